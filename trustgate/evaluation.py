"""Run one dimension scenario on one model: items -> cached generations -> outcomes -> score."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustgate.data import TrustData
from trustgate.dimension import Dimension, Item, Outcome, ScenarioData, outcome_columns
from trustgate.engine import Decoding, Engine, TransformersEngine, cached_generate, generation_keys, render_chat
from trustgate.errors import TrustgateError
from trustgate.generation_cache import GenerationCache
from trustgate.models import ModelHandle, evaluation_dtype, load_model
from trustgate.records import write_records
from trustgate.storage import digest, locked
from trustgate.thresholds import EvaluationSize, Thresholds


@dataclass(frozen=True)
class ScenarioRun:
    """One model's result on one scenario, with everything the gate and the reports need."""

    dimension: str
    scenario: str
    model: str
    fingerprint: str
    items: tuple[Item, ...]
    responses: tuple[tuple[str, ...], ...]
    outcomes: tuple[Outcome, ...]
    score: float
    source: str
    partial: str | None
    decoding: Decoding
    columns: dict[str, np.ndarray] = field(repr=False, compare=False, hash=False, default_factory=dict)

    @property
    def refusal_rate(self) -> float:
        return float(100.0 * np.mean(self.columns["refusal"])) if self.items else float("nan")


def select_items(items: tuple[Item, ...], limit: int) -> tuple[Item, ...]:
    """A deterministic, order-independent subset: the `limit` sample keys with the lowest hash.

    Items that share a sample key (one statement under three system prompts) stay together,
    and a limited run covers the data set evenly instead of its first topic only.
    """
    if not limit:
        return items
    keys = {item.sample_key or item.id for item in items}
    if len(keys) <= limit:
        return items
    chosen = set(sorted(keys, key=lambda k: hashlib.sha256(k.encode()).hexdigest())[:limit])
    return tuple(item for item in items if (item.sample_key or item.id) in chosen)


def record_event(kind: str, **fields: Any) -> None:
    """One JSON line per model load or generation, to $TRUSTGATE_EVENTS when set: how the
    benchmarks and the xdist test see what each worker really did."""
    path = os.environ.get("TRUSTGATE_EVENTS")
    if not path:
        return
    line = json.dumps({"event": kind, "pid": os.getpid(), "worker": os.environ.get("PYTEST_XDIST_WORKER"), **fields})
    with open(path, "a", encoding="utf-8") as handle:  # one short append per line: atomic on POSIX
        handle.write(line + "\n")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name)


class Evaluator:
    """Session-wide: data, caches and loaded models shared by every test of a run."""

    def __init__(
        self,
        data: TrustData,
        thresholds: Thresholds,
        profile: str,
        cache_root: Path,
        report_dir: Path,
        device: str,
        limit: int | None = None,
        batch_size: int | None = None,
        trust_remote_code: bool = False,
        max_loaded_models: int = 2,
        keep_loaded: str | None = None,
        engine_loader: Callable[[ModelHandle], Engine] | None = None,
    ) -> None:
        self.data = data
        self.thresholds = thresholds
        self.profile = profile
        self.cache_root = cache_root
        self.report_dir = report_dir
        self.device = device
        self.limit = limit
        self.batch_size = batch_size or thresholds.profiles[profile].batch_size
        self.trust_remote_code = trust_remote_code
        self.max_loaded_models = max_loaded_models
        # The dense base's fingerprint: every variant's test needs it, so variants go first.
        self.keep_loaded = keep_loaded
        self.generations = GenerationCache(cache_root / "generations.sqlite")
        self._scenario_data: dict[tuple[str, str], ScenarioData] = {}
        self._runs: dict[tuple[str, str, str], ScenarioRun] = {}
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tokenizers: dict[Path, Any] = {}
        # Tests and other backends plug in here; the default loads a transformers model.
        self._engine_loader = engine_loader or self._load_transformers_engine
        self.backend = f"transformers-{evaluation_dtype(device)}"
        self.loads: list[str] = []  # fingerprints loaded by this process, in order

    def size(self, dimension: Dimension) -> EvaluationSize:
        return self.thresholds.evaluation_size(self.profile, dimension.name)

    def scenario_data(self, dimension: Dimension, scenario: str) -> ScenarioData:
        key = (dimension.name, scenario)
        if key not in self._scenario_data:
            loaded = dimension.load(self.data, scenario)
            if not loaded.items:
                raise TrustgateError(
                    f"{dimension.name}/{scenario}",
                    f"no items in {loaded.source}",
                    "check the data folder; an empty scenario is never scored as a pass",
                )
            limit = self.limit if self.limit is not None else self.size(dimension).limit
            self._scenario_data[key] = ScenarioData(
                items=select_items(loaded.items, limit),
                source=loaded.source,
                partial=loaded.partial,
                max_new_tokens=loaded.max_new_tokens,
            )
        return self._scenario_data[key]

    def decoding(self, dimension: Dimension, scenario_data: ScenarioData) -> Decoding:
        size = self.size(dimension)
        max_new_tokens = size.max_new_tokens or scenario_data.max_new_tokens or dimension.max_new_tokens
        return Decoding(max_new_tokens=max_new_tokens, samples=size.samples, temperature=size.temperature)

    def engine(self, handle: ModelHandle) -> Engine:
        if handle.fingerprint in self._engines:
            self._engines.move_to_end(handle.fingerprint)
            return self._engines[handle.fingerprint]
        while len(self._engines) >= self.max_loaded_models:
            evictable = [fingerprint for fingerprint in self._engines if fingerprint != self.keep_loaded]
            del self._engines[evictable[0] if evictable else next(iter(self._engines))]
        engine = self._engine_loader(handle)
        self.loads.append(handle.fingerprint)
        record_event("load", model=handle.name, fingerprint=handle.fingerprint)
        self._engines[handle.fingerprint] = engine
        return engine

    def _load_transformers_engine(self, handle: ModelHandle) -> TransformersEngine:
        model, tokenizer = load_model(handle.path, self.device, self.trust_remote_code)
        return TransformersEngine(handle, model, tokenizer, batch_size=self.batch_size)

    def renderer(self, handle: ModelHandle) -> Callable[[Item], str]:
        """Chat template rendering needs only the tokenizer, so cached runs never load weights."""
        if handle.path not in self._tokenizers:
            from transformers import AutoTokenizer

            self._tokenizers[handle.path] = AutoTokenizer.from_pretrained(
                handle.path, trust_remote_code=self.trust_remote_code
            )
        tokenizer = self._tokenizers[handle.path]
        return lambda item: render_chat(tokenizer, item.chat())

    def run(self, dimension: Dimension, scenario: str, handle: ModelHandle) -> ScenarioRun:
        key = (handle.fingerprint, dimension.name, scenario)
        if key in self._runs:
            return self._runs[key]
        data = self.scenario_data(dimension, scenario)
        decoding = self.decoding(dimension, data)
        render = self.renderer(handle)
        prompts = [render(item) for item in data.items]
        responses = self._generate(handle, f"{dimension.name}/{scenario}", prompts, decoding)
        outcomes = dimension.score_items(data.items, responses)
        columns = outcome_columns(outcomes)
        run = ScenarioRun(
            dimension=dimension.name,
            scenario=scenario,
            model=handle.name,
            fingerprint=handle.fingerprint,
            items=data.items,
            responses=tuple(tuple(r) for r in responses),
            outcomes=tuple(outcomes),
            score=dimension.metric(columns),
            source=data.source,
            partial=data.partial,
            decoding=decoding,
            columns=columns,
        )
        write_records(
            self.report_dir / "records" / _safe(handle.name) / dimension.name / f"{_safe(scenario)}.jsonl",
            self.record_header(run),
            data.items,
            responses,
            outcomes,
        )
        self._runs[key] = run
        return run

    def _generate(self, handle: ModelHandle, label: str, prompts: list[str], decoding: Decoding) -> list[list[str]]:
        """Cached generations; one process at a time per scenario, so parallel xdist workers that
        need the same (weights, prompts, decoding) wait for each other and read the cache
        instead of generating it twice."""
        keys = generation_keys(handle, prompts, decoding, self.generations, self.backend)
        lock = self.cache_root / "locks" / f"generate-{digest(keys)[:24]}"
        stats: dict[str, int] = {}
        with locked(lock):
            responses = cached_generate(
                self.engine,
                handle,
                prompts,
                decoding,
                self.generations,
                description=f"generate {handle.name} {label}",
                chunk=max(64, self.batch_size),
                backend=self.backend,
                stats=stats,
            )
        record_event("generate", model=handle.name, scenario=label, prompts=len(prompts), **stats)
        return responses

    def record_header(self, run: ScenarioRun) -> dict[str, Any]:
        return {
            "dimension": run.dimension,
            "scenario": run.scenario,
            "model": run.model,
            "fingerprint": run.fingerprint,
            "source": run.source,
            "partial": run.partial,
            "decoding": run.decoding.__dict__,
            "profile": self.profile,
            "score": run.score,
            "refusal_rate": run.refusal_rate,
        }
