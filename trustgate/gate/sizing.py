"""A profile's sizes chosen by what they detect per second of generation.

Each dimension's check is worth what it can detect: its power against a true drop of
`TARGET_MARGINS` times its margin, in the planning model the plan lines use
(`kernel.planning_power`: 10% of units change, the check's own one-sided level, the t quantile at
the jackknife's degrees of freedom), with the check's own units: sample keys where the gate
resamples whole keys (a key's items move together: the 24 prompts of one Enron address count
once), else items. A size at which the kernel's jackknife cannot reach a verdict
(`kernel.jackknife_can_decide`: fewer than 10 units, or a scenario of one unit) is worth nothing.
Each costs the seconds its items take to generate on both models, measured per scenario from the
engine's event log (`benchmarks/ci_sizing.py`).

`allocate` spends a stated budget of seconds greedily, where the power bought per second is
highest: every dimension starts at its floor (the fewest sample keys per scenario, one at least,
that give `FLOOR_ITEMS` items in all: a smoke check that still sees a base model that does not
answer), and the step with the most power per added second is taken until no step fits. A
dimension whose power stays zero at any affordable size keeps its floor instead of taking a large
share of the run for a check that cannot detect anything, and a scenario whose items cost
`EXPENSIVE_FACTOR` times its dimension's cheapest is left out of the profile (`left_out`: its
dimension's overall check is judged on the others and says so; the release profile runs it):
fairness's 16/32-shot settings, machine ethics' few-shot one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trustgate.gate import kernel

FLOOR_KEYS_PER_SCENARIO = 1
FLOOR_ITEMS = 10
# The drop, in margins, a quick profile buys power against: a gross regression (20 points at the
# default margin of 5; the paper's 3-bit and 50%-pruned variants lost 25-50 points on single
# dimensions). Twice the margin, the precision a PASS needs, is the release profile's business:
# on the embedded model, whose answers are near chance, one dimension alone could buy it in the
# ci budget and every other would keep a floor that proves nothing.
TARGET_MARGINS = 4.0
# A scenario whose items cost this many times its dimension's cheapest scenario's is left out:
# its items buy the overall check the same power at that many times the seconds (fairness's
# 16/32-shot settings, ~50x its zero-shot ones on the embedded model; machine ethics' few-shot).
# Held at one sample key it made the check's interval undefined (the jackknife empties a scenario
# of one key), so the check decided nothing while the settings took a quarter of the run; at two
# keys they would take over 40% of the ci budget. The release profile runs them whole.
EXPENSIVE_FACTOR = 5.0
STEP_GRANULARITY = 1e-9  # a step must buy more power than this to be worth any seconds


def planning_units(items: int, keys: int, resample: str) -> int:
    """What the check's test counts as independent units: sample keys where the gate resamples
    whole keys (resample = "sample_key"), else items. The plan lines and the sizing both use it."""
    return keys if resample == "sample_key" else items


def planning_df(units_per_scenario: Sequence[int], resample: str = "sample_key") -> float:
    """Degrees of freedom of the jackknife over these scenarios' units (each scenario a stratum:
    units - 1 each, pooled as Satterthwaite does for equal variances); two units per scenario over
    eight scenarios give 8, whose t quantile at the gate's levels is ~3.4, not the normal 2.6: few
    keys per scenario buy little. 0 (no test: no power, nothing detectable) where the jackknife
    cannot reach a verdict (`kernel.jackknife_can_decide`); one scenario of single items may be
    judged by the exact score test, which has no such limit."""
    score_test_possible = len(units_per_scenario) == 1 and resample != "sample_key"
    if not score_test_possible and not kernel.jackknife_can_decide(units_per_scenario):
        return 0.0
    return float(sum(max(units - 1, 0) for units in units_per_scenario))


@dataclass(frozen=True)
class DimensionCost:
    """A dimension's candidate limits (sample keys per scenario, ascending), the items each gives
    and the seconds those items take on both models."""

    name: str
    margin: float
    alpha: float
    limits: tuple[int, ...]
    items: tuple[int, ...]
    units: tuple[int, ...]  # what the test counts: sample keys (resample = "sample_key") or items
    dfs: tuple[float, ...]  # the jackknife's degrees of freedom at each candidate (planning_df)
    seconds: tuple[float, ...]
    powers: tuple[float, ...]  # against a true drop of TARGET_MARGINS x the margin (kernel.planning_power)
    left_out: tuple[str, ...]  # the expensive scenarios, not run (EXPENSIVE_FACTOR)

    def detectable(self, index: int) -> float:
        return float(kernel.detectable_drop(self.units[index], self.margin, self.alpha, df=self.dfs[index]))


def candidate_costs(
    name: str,
    margin: float,
    alpha: float,
    keys_per_scenario: Mapping[str, Sequence[int]],
    seconds_per_item: Mapping[str, float],
    resample: str = "sample_key",
) -> DimensionCost:
    """Candidates from the floor to every key: `keys_per_scenario[scenario]` lists the item count
    of each sample key in the order a limit takes them (the gate's hashed order), and
    `seconds_per_item[scenario]` the measured seconds of one item on both models; the test's
    units follow `resample` (`planning_units`)."""
    cheapest = min(seconds_per_item[scenario] for scenario in keys_per_scenario)
    left_out = tuple(s for s in keys_per_scenario if seconds_per_item[s] > EXPENSIVE_FACTOR * cheapest)
    keys_per_scenario = {s: sizes for s, sizes in keys_per_scenario.items() if s not in left_out}
    most = max(len(sizes) for sizes in keys_per_scenario.values())
    floor = next(
        (
            limit
            for limit in range(FLOOR_KEYS_PER_SCENARIO, most + 1)
            if sum(sum(sizes[:limit]) for sizes in keys_per_scenario.values()) >= FLOOR_ITEMS
        ),
        most,
    )
    limits, items, units, dfs, seconds = [], [], [], [], []
    for limit in range(min(floor, most), most + 1):
        taken = {scenario: sizes[:limit] for scenario, sizes in keys_per_scenario.items()}
        limits.append(limit)
        items.append(sum(sum(sizes) for sizes in taken.values()))
        per_scenario = [planning_units(sum(sizes), len(sizes), resample) for sizes in taken.values()]
        units.append(sum(per_scenario))
        dfs.append(planning_df(per_scenario, resample))
        seconds.append(sum(sum(sizes) * seconds_per_item[scenario] for scenario, sizes in taken.items()))
    powers = tuple(
        kernel.planning_power(n, TARGET_MARGINS * margin, margin, alpha, df=df)
        for n, df in zip(units, dfs, strict=True)
    )
    return DimensionCost(
        name, margin, alpha, tuple(limits), tuple(items), tuple(units), tuple(dfs), tuple(seconds), powers, left_out
    )


def allocate(costs: Sequence[DimensionCost], budget_seconds: float) -> dict[str, int]:
    """The limit per dimension: floors first, then the steps with the most power per second
    while the total stays within the budget (deterministic: ties go to the cheaper step, then the
    dimension's name)."""
    chosen = {cost.name: 0 for cost in costs}
    spent = sum(cost.seconds[0] for cost in costs)
    while True:
        best: tuple[float, float, str, int] | None = None
        for cost in costs:
            here = chosen[cost.name]
            for step in range(here + 1, len(cost.limits)):
                extra = cost.seconds[step] - cost.seconds[here]
                gain = cost.powers[step] - cost.powers[here]
                if spent + extra > budget_seconds or gain <= STEP_GRANULARITY:
                    continue
                rate = gain / max(extra, 1e-9)
                candidate = (-rate, extra, cost.name, step)
                if best is None or candidate < best:
                    best = candidate
        if best is None:
            break
        _, extra, name, step = best
        chosen[name] = step
        spent += extra
    return {cost.name: cost.limits[chosen[cost.name]] for cost in costs}
