"""Calibration seeds of one method, judged together (the paper reports their mean and spread).

`--model gptq4@seed0 --model gptq4@seed1 --model gptq4@seed2` forms the seed group
`gptq4@seeds`: a test of its own that judges the seeds' mean drop, or the worst seed's when
thresholds.toml [gate] worst_seed (or --worst-seed) asks for it. The seeds' own tests still
report their scores, as informational verdicts, so one lucky or unlucky seed does not decide.
"""

from __future__ import annotations

from collections.abc import Sequence

from compressors.variants import DEFAULT_CALIBRATION_SAMPLES, VariantSpec

GROUP_SUFFIX = "@seeds"


def _group_name(spec: VariantSpec) -> str:
    calibration = "" if spec.calibration_samples == DEFAULT_CALIBRATION_SAMPLES else f"+cal{spec.calibration_samples}"
    return f"{spec.family}{calibration}{GROUP_SUFFIX}"


def seed_groups(variants: Sequence[VariantSpec]) -> dict[str, tuple[str, ...]]:
    """group name -> member variant names, for each method given with two or more seeds.

    Members share method, setting and calibration size and differ only in seed; a variant
    without @seedN is seed 0.
    """
    groups: dict[str, dict[int, str]] = {}
    for spec in variants:
        if spec.needs_calibration:
            groups.setdefault(_group_name(spec), {}).setdefault(spec.seed, spec.name)
    return {name: tuple(members[s] for s in sorted(members)) for name, members in groups.items() if len(members) >= 2}


def group_of(variant: str, groups: dict[str, tuple[str, ...]]) -> str | None:
    """The seed group a variant belongs to, if any."""
    return next((name for name, members in groups.items() if variant in members), None)
