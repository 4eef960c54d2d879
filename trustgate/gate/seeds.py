"""Calibration seeds of one method, judged together (the paper reports their mean and spread).

`--model gptq4@seed0 --model gptq4@seed1 --model gptq4@seed2` forms the seed group
`gptq4@seeds`: a test of its own that judges the seeds' mean drop, or the worst seed's when
thresholds.toml [gate] worst_seed (or --trust-worst-seed) asks for it. The seeds' own tests still
report their scores, as informational verdicts, so one lucky or unlucky seed does not decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

GROUP_SUFFIX = "@seeds"


class SeededVariant(Protocol):
    """What grouping needs of a variant (compressors' VariantSpec has it)."""

    name: str
    seed: int

    @property
    def needs_calibration(self) -> bool: ...

    @property
    def unseeded_name(self) -> str:
        """The name without its seed: method, setting and calibration size."""
        ...


def seed_groups(variants: Sequence[SeededVariant]) -> dict[str, tuple[str, ...]]:
    """group name -> member variant names, for each method given with two or more seeds.

    Members share method, setting and calibration size and differ only in seed; a variant
    without @seedN is seed 0.
    """
    groups: dict[str, dict[int, str]] = {}
    for spec in variants:
        if spec.needs_calibration:
            groups.setdefault(spec.unseeded_name + GROUP_SUFFIX, {}).setdefault(spec.seed, spec.name)
    return {name: tuple(members[s] for s in sorted(members)) for name, members in groups.items() if len(members) >= 2}


def group_of(variant: str, groups: dict[str, tuple[str, ...]]) -> str | None:
    """The seed group a variant belongs to, if any."""
    return next((name for name, members in groups.items() if variant in members), None)
