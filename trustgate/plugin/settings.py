"""Run settings from the command line, validated once at configure time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustgate.data import resolve_trust_data
from trustgate.dimensions import all_dimensions
from trustgate.evaluation.profiles import EngineSettings, EvaluationSettings
from trustgate.gate.policy import Thresholds, check_scenario_names, load_thresholds
from trustgate.models import EMBEDDED_BASE_MODEL, check_base_model_name, check_device
from trustgate.plugin.options import DEFAULT_VARIANT
from trustgate.plugin.repository import REPOSITORY, import_compressors
from trustgate.util.errors import TrustgateError
from trustgate.util.storage import default_cache_root, user_path

if TYPE_CHECKING:
    from compressors.variants import VariantSpec

CALIBRATION_SOURCES = ("auto", "c4", "fallback")


@dataclass(frozen=True)
class RemedySettings:
    """--remedy and its budgets, checked at configure time."""

    probes: int
    minutes: float
    max_size_increase: float
    rank_items: int
    rank_blocks: int | None
    prompt_tokens: int


def remedy_settings(option: Any) -> RemedySettings | None:
    if not option.trust_remedy:
        return None
    counts = {
        "--remedy-probes": option.trust_remedy_probes,
        "--remedy-rank-items": option.trust_remedy_rank_items,
        "--remedy-prompt-tokens": option.trust_remedy_prompt_tokens,
        "--remedy-minutes": option.trust_remedy_minutes,
    }
    if option.trust_remedy_rank_blocks is not None:
        counts["--remedy-rank-blocks"] = option.trust_remedy_rank_blocks
    for flag, value in counts.items():
        if value <= 0:
            raise TrustgateError(f"{flag} {value}", "must be positive", f"pass a positive {flag}")
    if option.trust_remedy_max_size < 0:
        raise TrustgateError(
            f"--remedy-max-size {option.trust_remedy_max_size}", "must be 0 or more percent", "pass e.g. 100"
        )
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
    remedy: RemedySettings | None = None  # --remedy: search a remedy for each failing variant


def engine_settings(option: Any, models: list[str]) -> EngineSettings:
    """--engine and what it needs, checked before anything runs; `models`: dense and the variants."""
    name = option.trust_engine
    urls = option.trust_engine_urls or []
    if urls and name != "openai":
        raise TrustgateError(
            f"--engine-url {urls[0]}", f"only the openai engine uses it (not {name})", "add --engine openai"
        )
    for size in ("tensor_parallel_size", "pipeline_parallel_size"):
        value = getattr(option, f"trust_{size}")
        if value < 1 or (value > 1 and name != "vllm"):
            flag = "--" + size.replace("_", "-")
            raise TrustgateError(f"{flag} {value}", "must be a positive count, for --engine vllm", f"drop {flag}")
    if option.trust_max_model_len is not None and option.trust_max_model_len < 1:
        raise TrustgateError(f"--max-model-len {option.trust_max_model_len}", "must be positive", "pass e.g. 4096")
    parsed: list[tuple[str, str]] = []
    for text in urls:
        model, sep, url = text.partition("=")
        if not sep or "://" in model:
            model, url = "", text
        if model and model not in models:
            raise TrustgateError(f"--engine-url {text}", f"{model} is not a model of this run", f"name one of {models}")
        from trustgate.engine.openai import split_url

        split_url(url)  # a malformed URL is a usage error now, not a failed test later
        parsed.append((model, url))
    if name == "openai":
        missing = [m for m in models if not any(key in ("", m) for key, _ in parsed)]
        if missing:
            raise TrustgateError(
                "--engine openai", f"no --engine-url for {', '.join(missing)}", "pass --engine-url MODEL=URL for each"
            )
    python = None
    if name == "vllm":
        python = user_path(option.trust_vllm_python) if option.trust_vllm_python else None
        python = (python or REPOSITORY / ".venv-vllm" / "bin" / "python").absolute()  # a venv's link, unresolved
        if not python.is_file():
            raise TrustgateError(
                f"--vllm-python {python}", "no such interpreter", "run `bash scripts/setup.sh --with-vllm`"
            )
    return EngineSettings(
        name=name,
        vllm_python=python,
        urls=tuple(parsed),
        tensor_parallel_size=option.trust_tensor_parallel_size,
        pipeline_parallel_size=option.trust_pipeline_parallel_size,
        max_model_len=option.trust_max_model_len,
    )


def build_settings(option: Any) -> Settings:
    """Settings from pytest's parsed options (the `trust_*` destinations of plugin.options)."""
    limit = option.trust_limit
    if limit is not None and limit < 0:
        raise TrustgateError(f"--limit {limit}", "must be 0 (all items) or a positive count", "pass e.g. --limit 48")
    if option.trust_calibration not in CALIBRATION_SOURCES:
        raise TrustgateError(
            f"--calibration {option.trust_calibration}", "unknown source", f"choose {', '.join(CALIBRATION_SOURCES)}"
        )
    if option.trust_batch_size is not None and option.trust_batch_size < 1:
        raise TrustgateError(
            f"--batch-size {option.trust_batch_size}",
            "must be a positive number of prompts",
            "pass e.g. --batch-size 16",
        )
    check_device(option.trust_device)
    base_model = option.trust_base_model or EMBEDDED_BASE_MODEL
    check_base_model_name(base_model)
    thresholds_path = user_path(option.trust_thresholds)
    policy = load_thresholds(thresholds_path, option.trust_profile)
    check_scenario_names(policy, thresholds_path, {d.name: d.scenarios for d in all_dimensions().values()})
    compressors = import_compressors()
    variants = tuple(compressors.parse_variants(option.trust_models or [DEFAULT_VARIANT]))
    # the family counts every blocking check of the run (and its variants under family = "run")
    policy.for_run({d.name: d.scenarios for d in all_dimensions().values()}, sum(not v.is_dense for v in variants))
    engine = engine_settings(option, ["dense", *(v.name for v in variants if not v.is_dense)])
    evaluation = EvaluationSettings(
        data=resolve_trust_data(option.trust_data),
        profile_name=option.trust_profile,
        profile=policy.profiles[option.trust_profile],
        cache_root=user_path(option.trust_cache_dir) if option.trust_cache_dir else default_cache_root(),
        report_dir=Path(option.trust_report),
        device=option.trust_device,
        limit=limit,
        batch_size=option.trust_batch_size,
        trust_remote_code=option.trust_remote_code,
        engine=engine,
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
