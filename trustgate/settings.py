"""Run settings from the command line, validated once at configure time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compressors.variants import VariantSpec, parse_variants
from trustgate.data import TrustData, resolve_trust_data
from trustgate.dimensions import all_dimensions
from trustgate.errors import TrustgateError
from trustgate.models import EMBEDDED_BASE_MODEL
from trustgate.storage import default_cache_root, user_path
from trustgate.thresholds import Thresholds, check_scenario_names, load_thresholds

DEFAULT_VARIANT = "gptq4"
CALIBRATION_SOURCES = ("auto", "c4", "fallback")


@dataclass(frozen=True)
class Settings:
    variants: tuple[VariantSpec, ...]
    base_model: str
    data: TrustData
    thresholds_path: Path
    thresholds: Thresholds
    profile: str
    cache_root: Path
    report_dir: Path
    device: str
    limit: int | None
    batch_size: int | None
    calibration: str
    trust_remote_code: bool


def build_settings(
    *,
    models: list[str] | None,
    base_model: str | None,
    trust_data: str | None,
    thresholds: str,
    profile: str,
    cache_dir: str | None,
    report_dir: str,
    device: str,
    limit: int | None,
    batch_size: int | None,
    calibration: str,
    trust_remote_code: bool,
) -> Settings:
    if limit is not None and limit < 0:
        raise TrustgateError(f"--limit {limit}", "must be 0 (all items) or a positive count", "pass e.g. --limit 48")
    if calibration not in CALIBRATION_SOURCES:
        raise TrustgateError(
            f"--calibration {calibration}", "unknown source", f"choose {', '.join(CALIBRATION_SOURCES)}"
        )
    thresholds_path = user_path(thresholds)
    policy = load_thresholds(thresholds_path, profile)
    check_scenario_names(policy, thresholds_path, {d.name: d.scenarios for d in all_dimensions().values()})
    return Settings(
        variants=tuple(parse_variants(models or [DEFAULT_VARIANT])),
        base_model=base_model or EMBEDDED_BASE_MODEL,
        data=resolve_trust_data(trust_data),
        thresholds_path=thresholds_path,
        thresholds=policy,
        profile=profile,
        cache_root=user_path(cache_dir) if cache_dir else default_cache_root(),
        report_dir=Path(report_dir),
        device=device,
        limit=limit,
        batch_size=batch_size,
        calibration=calibration,
        trust_remote_code=trust_remote_code,
    )
