"""Run settings from the command line, validated once at configure time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustgate.data import resolve_trust_data
from trustgate.dimensions import all_dimensions
from trustgate.evaluation.profiles import EngineSettings, EvaluationSettings
from trustgate.gate.policy import Thresholds, check_scenario_names, load_thresholds
from trustgate.models import EMBEDDED_BASE_MODEL, check_base_model_name, check_checkpoint_name, check_device
from trustgate.plugin.options import DEFAULT_THRESHOLDS, DEFAULT_VARIANT
from trustgate.plugin.repository import REPOSITORY, import_compressors
from trustgate.util.errors import TrustgateError
from trustgate.util.storage import default_cache_root, user_path

if TYPE_CHECKING:
    from compressors.variants import VariantSpec


@dataclass(frozen=True)
class RemedySettings:
    """--trust-remedy and its budgets (each value checked by its validator in plugin.options)."""

    probes: int
    minutes: float
    max_size_increase: float
    rank_items: int
    rank_blocks: int | None
    prompt_tokens: int


def remedy_settings(option: Any) -> RemedySettings | None:
    """The budgets' values are checked by their validators (plugin.options)."""
    if not option.trust_remedy:
        return None
    return RemedySettings(
        probes=option.trust_remedy_probes,
        minutes=option.trust_remedy_minutes,
        max_size_increase=option.trust_remedy_max_size,
        rank_items=option.trust_remedy_rank_items,
        rank_blocks=option.trust_remedy_rank_blocks,
        prompt_tokens=option.trust_remedy_prompt_tokens,
    )


@dataclass(frozen=True)
class Settings:
    variants: tuple[VariantSpec, ...]
    base_model: str
    thresholds_path: Path
    thresholds: Thresholds
    calibration: str
    worst_seed: bool
    evaluation: EvaluationSettings
    allow_ungated: bool = False  # checks skipped for missing data leave the session green
    remedy: RemedySettings | None = None  # --trust-remedy: search a remedy for each failing variant


def engine_settings(option: Any, models: list[str]) -> EngineSettings:
    """--trust-engine and what it needs, checked before anything runs; `models`: dense and the variants."""
    name = option.trust_engine
    urls = option.trust_engine_url or []
    if urls and name != "openai":
        raise TrustgateError(
            f"--trust-engine-url {urls[0]}",
            f"only the openai engine uses it (not {name})",
            "add --trust-engine openai",
        )
    for size in ("tensor_parallel_size", "pipeline_parallel_size"):
        value = getattr(option, f"trust_{size}")
        if value > 1 and name != "vllm":
            flag = "--trust-" + size.replace("_", "-")
            raise TrustgateError(f"{flag} {value}", "only --trust-engine vllm uses it", f"drop {flag}")
    parsed: list[tuple[str, str]] = []
    for text in urls:
        model, sep, url = text.partition("=")
        if not sep or "://" in model:
            model, url = "", text
        if model and model not in models:
            raise TrustgateError(
                f"--trust-engine-url {text}", f"{model} is not a model of this run", f"name one of {models}"
            )
        parsed.append((model, url))
    if name == "openai":
        missing = [m for m in models if not any(key in ("", m) for key, _ in parsed)]
        if missing:
            raise TrustgateError(
                "--trust-engine openai",
                f"no --trust-engine-url for {', '.join(missing)}",
                "pass --trust-engine-url MODEL=URL for each",
            )
    python = None
    if name == "vllm":
        python = user_path(option.trust_vllm_python) if option.trust_vllm_python else None
        python = (python or REPOSITORY / ".venv-vllm" / "bin" / "python").absolute()  # a venv's link, unresolved
        if not python.is_file() or not os.access(python, os.X_OK):
            raise TrustgateError(
                f"--trust-vllm-python {python}",
                "no such interpreter" if not python.is_file() else "not executable",
                "run `bash scripts/setup.sh --with-vllm`",
            )
    return EngineSettings(
        name=name,
        vllm_python=python,
        urls=tuple(parsed),
        tensor_parallel_size=option.trust_tensor_parallel_size,
        pipeline_parallel_size=option.trust_pipeline_parallel_size,
        max_model_len=option.trust_max_model_len,
    )


def writable_folder(flag: str, text: str) -> Path:
    """A folder trustgate writes into, created now: a file, a read-only place or /proc is a usage
    error at start-up, never a traceback (or a lost verdict table) at the end of the run."""
    path = user_path(text)
    fix = f"pass {flag} a folder you can write to"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".trustgate-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise TrustgateError(f"{flag} {text}", f"cannot be written ({exc.strerror or exc})", fix) from None
    return path


def build_settings(option: Any) -> Settings:
    """Settings from pytest's parsed options (the `trust_*` destinations of plugin.options); each
    option's own value was checked by its validator, these are the rules across options."""
    check_device(option.trust_device)
    base_model = option.trust_base_model or EMBEDDED_BASE_MODEL
    check_base_model_name(base_model)
    thresholds_path = user_path(option.trust_thresholds or REPOSITORY / DEFAULT_THRESHOLDS)
    policy = load_thresholds(thresholds_path, option.trust_profile)
    check_scenario_names(policy, thresholds_path, {d.name: d.scenarios for d in all_dimensions().values()})
    compressors = import_compressors()
    variants = tuple(compressors.parse_variants(option.trust_model or [DEFAULT_VARIANT]))
    for variant in variants:
        if variant.method == "checkpoint" and variant.checkpoint is not None:
            check_checkpoint_name("--model", variant.name)
    # the family counts every blocking check of the run (and its variants under family = "run")
    policy.for_run({d.name: d.scenarios for d in all_dimensions().values()}, sum(not v.is_dense for v in variants))
    engine = engine_settings(option, ["dense", *(v.name for v in variants if not v.is_dense)])
    evaluation = EvaluationSettings(
        data=resolve_trust_data(option.trust_data),
        profile_name=option.trust_profile,
        profile=policy.profiles[option.trust_profile],
        cache_root=writable_folder("--trust-cache-dir", option.trust_cache_dir or str(default_cache_root())),
        report_dir=writable_folder("--trust-report", option.trust_report),
        device=option.trust_device,
        limit=option.trust_limit,
        batch_size=option.trust_batch_size,
        trust_remote_code=option.trust_remote_code,
        engine=engine,
        scenarios_together=not option.trust_one_scenario_at_a_time,
    )
    if option.trust_calibration == "c4" and any(v.needs_calibration for v in variants):
        compressors.calibration.check_c4_reachable()
    return Settings(
        variants=variants,
        base_model=base_model,
        thresholds_path=thresholds_path,
        thresholds=policy,
        calibration=option.trust_calibration,
        worst_seed=policy.gate.worst_seed or bool(option.trust_worst_seed),
        evaluation=evaluation,
        allow_ungated=bool(option.trust_allow_ungated),
        remedy=remedy_settings(option),
    )
