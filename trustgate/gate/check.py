"""One gate check: evaluate dense and the variant on a scenario (or a dimension overall),
compare them under the policy, and hand back the comparison with the runs it rests on.

The pytest layer (fixtures/gate.py) turns the result into a test verdict and reports; this
module knows nothing of pytest or of how variants are built (it is given a function for that).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from trustgate.dimensions.base import Dimension
from trustgate.evaluation.evaluator import Evaluator, ScenarioRun
from trustgate.gate.compare import OVERALL, Comparison, compare, compare_seeds, precise_enough, refusal_rise_interval
from trustgate.gate.policy import ResolvedPolicy, Thresholds
from trustgate.gate.seeds import group_of
from trustgate.gate.stats import Interval, confidence_label, proves_failure
from trustgate.models import ModelHandle
from trustgate.util.errors import MissingDataError


@dataclass(frozen=True)
class CheckResult:
    comparison: Comparison
    dense: Mapping[str, ScenarioRun]
    variant: Mapping[str, ScenarioRun]  # a seed group's: its lowest-scoring seed's runs
    missing: Mapping[str, str]  # scenarios left out for missing data, and why


class NoData(MissingDataError):
    """Not one scenario of the check has data."""


Look = dict[str, int]  # sample keys per scenario


@dataclass(frozen=True)
class Stop:
    """Where the sequential run of a (dimension, variant) stopped: the look whose items every
    check of it is judged on, and, for an early stop, what was clear and at what confidence."""

    look: Look
    note: str | None = None
    confidence: float | None = None


def interim_decision(comparison: Comparison, refusal_rise: Interval) -> str | None:
    """At an interim look: "FAIL" when the data prove a drop (or refusal rise) beyond the bound
    (drop_significant: when its own rule fails on the interim interval),
    "PASS" when they prove both within it and the look is as precise as a final verdict must be
    (`precise_enough`), None (look further) otherwise. A check that cannot tell (the base model
    does not answer, too few items) always looks further. The precision condition matters on
    small looks: where dense scores 0 on every item of a look, every resample's drop is <= 0 and
    the interval proves nothing, yet its upper end sits below any margin. It reads no score
    interval: `GateCheck.stop` compares its looks without them."""
    if comparison.inconclusive:
        return None
    drop, margin = comparison.drop_interval, comparison.margin
    if proves_failure(comparison.rule, comparison.drop, drop, margin) or refusal_rise.low > comparison.max_refusal_rise:
        return "FAIL"
    floor_ok = comparison.floor is None or comparison.variant_score >= comparison.floor
    precise = precise_enough(comparison.detectable_drop, margin)
    if drop.high <= margin and refusal_rise.high <= comparison.max_refusal_rise and floor_ok and precise:
        return "PASS"
    return None


@dataclass
class GateCheck:
    evaluator: Evaluator
    thresholds: Thresholds
    base_model: ModelHandle
    variant_model: Callable[[str], ModelHandle]
    seed_groups: Mapping[str, tuple[str, ...]]
    worst_seed: bool = False
    # The checks the run selected, per dimension: scenario ids and/or OVERALL. None: all of them.
    selected: Mapping[str, frozenset[str]] | None = None
    profile: str | None = None  # the evaluation profile (whether too few items block)
    _stops: dict[tuple[str, str, tuple[str, ...]], Stop] = field(default_factory=dict, init=False, repr=False)

    def available(self, dimension: Dimension, scenario: str) -> tuple[list[str], dict[str, str]]:
        """The scenarios of the check that have data, and why the others have none."""
        wanted = dimension.scenarios if scenario == OVERALL else (scenario,)
        available, missing = [], {}
        for name in wanted:
            try:
                self.evaluator.scenario_data(dimension, name)
                available.append(name)
            except MissingDataError as exc:
                missing[name] = str(exc)
        return available, missing

    def runs(
        self, dimension: Dimension, scenarios: list[str], model: ModelHandle, look: Look | None = None
    ) -> dict[str, ScenarioRun]:
        return {name: self.evaluator.run(dimension, name, model, (look or {}).get(name)) for name in scenarios}

    def _overall_selected(self, dimension: Dimension) -> bool:
        return self.selected is None or OVERALL in self.selected.get(dimension.name, frozenset({OVERALL}))

    def _scope(self, dimension: Dimension) -> tuple[str, ...]:
        """The scenarios whose combined score decides when to stop: every one with data when the
        dimension's overall check runs, else the selected scenarios."""
        available, _ = self.available(dimension, OVERALL)
        if self._overall_selected(dimension):
            return tuple(available)
        chosen = self.selected.get(dimension.name, frozenset()) if self.selected else frozenset()
        return tuple(name for name in available if name in chosen) or tuple(available)

    def _looks(self, dimension: Dimension, scope: tuple[str, ...], policy: ResolvedPolicy) -> list[Look]:
        """The looks of the sequential run, the last one the whole selection. An interim look
        where a scenario would have fewer than `min_look_items` items, or no more keys than the
        look before, is skipped: a metric on a handful of items (fairness needs a few parsed
        answers per group) says nothing, and a look that judges nothing only spends alpha."""
        keys = {name: self.evaluator.key_count(dimension, name) for name in scope}
        looks: list[Look] = []
        for fraction in policy.looks:
            look = {name: max(1, math.ceil(fraction * count)) for name, count in keys.items()}
            if fraction < 1.0:
                fewest = min(len(self.evaluator.items_at(dimension, name, n)) for name, n in look.items())
                if fewest < policy.min_look_items or (looks and look == looks[-1]) or look == keys:
                    continue
            looks.append(look)
        return looks

    def stop(self, dimension: Dimension, variant: str) -> Stop:
        """Run the (dimension, variant) in looks and stop at the first that is clear either way.

        Interim looks spend `interim_alpha` evenly (Bonferroni over the looks and, under
        Bonferroni, over the blocking dimensions), so stopping early adds at most that to the
        family-wise chance of a wrong verdict; the last look is judged as a run without looks
        would be. Seed groups are judged on every item (no interim looks).
        """
        scope = self._scope(dimension)
        memo = (dimension.name, variant, scope)
        if memo in self._stops:
            return self._stops[memo]
        judged = OVERALL if len(scope) > 1 or self._overall_selected(dimension) else scope[0]
        policy = self.thresholds.policy(
            dimension.name, None if judged == OVERALL else judged, judged_alone=True, profile=self.profile
        )
        looks = self._looks(dimension, scope, policy)
        stop = Stop(looks[-1])
        if len(looks) > 1 and variant not in self.seed_groups:
            confidence = self.thresholds.interim_confidence(len(looks) - 1)
            interim = policy.model_copy(update={"confidence": confidence})
            total = sum(len(self.evaluator.items_at(dimension, name)) for name in scope)
            for number, look in enumerate(looks[:-1], start=1):
                dense = self.runs(dimension, list(scope), self.base_model, look)
                compressed = self.runs(dimension, list(scope), self.variant_model(variant), look)
                # interim_decision reads the drop interval, never the score intervals: skip their bootstraps
                rise = refusal_rise_interval(dimension, dense, compressed, interim)
                comparison = compare(
                    dimension, judged, dense, compressed, interim, score_intervals=False, refusal_interval=rise
                )
                decision = interim_decision(comparison, rise)
                if decision:
                    stop = Stop(
                        look,
                        f"stopped early at look {number} of {len(looks)} ({comparison.n_items} of {total} items): "
                        f"{decision} clear at {confidence_label(confidence)} confidence",
                        confidence,
                    )
                    break
        self._stops[memo] = stop
        return stop

    def check(self, dimension: Dimension, scenario: str, variant: str) -> CheckResult:
        """Score dense and variant on the same items and judge the drop; NoData when nothing can be scored."""
        available, missing = self.available(dimension, scenario)
        if not available:
            raise NoData(f"{dimension.name}/{scenario}", "no data", "; ".join(missing.values()))
        alone = scenario != OVERALL and not self._overall_selected(dimension)
        policy = self.thresholds.policy(
            dimension.name, None if scenario == OVERALL else scenario, judged_alone=alone, profile=self.profile
        )
        stop = self.stop(dimension, variant)
        if stop.note and (scenario == OVERALL or alone):
            policy = policy.model_copy(update={"confidence": stop.confidence})  # the stopping check's own verdict
        dense = self.runs(dimension, available, self.base_model, stop.look)
        if variant in self.seed_groups:
            seeds = {
                name: self.runs(dimension, available, self.variant_model(name), stop.look)
                for name in self.seed_groups[variant]
            }
            comparison = compare_seeds(dimension, scenario, variant, dense, seeds, policy, self.worst_seed)
            worst = min(comparison.seeds, key=lambda seed: seed[1])[0]  # the lowest-scoring seed
            compressed = seeds[worst]
        else:
            if group_of(variant, self.seed_groups):
                # One seed of a group: reported, but the group's test carries the verdict.
                policy = policy.model_copy(update={"tier": "informational"})
            compressed = self.runs(dimension, available, self.variant_model(variant), stop.look)
            comparison = compare(dimension, scenario, dense, compressed, policy)
        if stop.note:
            comparison = dataclasses.replace(comparison, stopped=stop.note)
        if missing:
            note = "missing scenarios: " + ", ".join(sorted(missing))
            comparison = dataclasses.replace(comparison, partial="; ".join(p for p in (comparison.partial, note) if p))
        return CheckResult(comparison, dense, compressed, missing)
