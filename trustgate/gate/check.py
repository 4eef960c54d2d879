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
from trustgate.gate import kernel
from trustgate.gate.compare import OVERALL, Comparison, check_evidence, compare, compare_seeds
from trustgate.gate.policy import ResolvedPolicy, Thresholds
from trustgate.gate.seeds import group_of
from trustgate.gate.stats import confidence_label
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

    required = True  # the session fails closed unless the dimension may go ungated

    @property
    def reason(self) -> str:
        """What the run's "not gated" list says of the check."""
        return self.fix


class LeftOut(NoData):
    """A scenario the profile does not run (`left_out` in thresholds.toml). Not a gap where its
    dimension's overall check runs (that check is judged without it and says so); a gap where
    the run selected the scenario alone, so that such a run gates nothing and is not green."""

    def __init__(self, dimension: str, scenario: str, profile: str | None, required: bool) -> None:
        super().__init__(
            f"{dimension}/{scenario}",
            f"left out by the {profile} profile",
            "its items cost many times its dimension's others (thresholds.toml [profiles."
            f"{profile}.dimensions.{dimension}] left_out); --trust-profile release or --trust-limit N runs it",
        )
        self.required = required

    @property
    def reason(self) -> str:
        return f"{self.problem}: {self.fix}"


Look = dict[str, int]  # sample keys per scenario


@dataclass(frozen=True)
class Stop:
    """Where the sequential run of a (dimension, variant) stopped: the look whose items every
    check of it is judged on, and, for an early stop, what was clear and at what confidence."""

    look: Look
    note: str | None = None
    levels: kernel.Levels | None = None


def interim_decision(
    dimension: Dimension,
    judged: str,
    dense: Mapping[str, ScenarioRun],
    variant: Mapping[str, ScenarioRun],
    policy: ResolvedPolicy,
) -> tuple[str, Comparison]:
    """At an interim look (policy carrying the look's spent levels): the kernel's interim decision
    ("FAIL", "PASS" or "" to look further) on this look's evidence. A check that cannot tell (the
    base model does not answer, too few items) always looks further."""
    comparison = compare(dimension, judged, dense, variant, policy, score_intervals=False)
    if comparison.inconclusive:
        return "", comparison
    drop, rise = check_evidence(dimension, judged, dense, [variant], policy)
    keyed = [
        len({item.sample_key for item in run.items}) for run in dense.values() if any(i.sample_key for i in run.items)
    ]
    decision = kernel.interim_decision(
        policy.rule, drop, rise, policy.margin, policy.max_refusal_rise, policy.levels,
        detectable=comparison.detectable_drop,
        floor_fails=comparison.floor is not None and comparison.variant_score < comparison.floor,
        keys=min(keyed) if keyed else None,
    )  # fmt: skip
    return str(decision), comparison


def look_sizes(
    key_counts: Mapping[str, int], items_at: Callable[[str, int], int], policy: ResolvedPolicy
) -> list[Look]:
    """The looks of a sequential run (sample keys per scenario), the last one the whole selection.
    An interim look where a scenario would have fewer than `min_look_items` items, or no more keys
    than the look before, is skipped: a metric on a handful of items (fairness needs a few parsed
    answers per group) says nothing. `items_at(scenario, keys)`: the items of that many keys."""
    looks: list[Look] = []
    for fraction in policy.looks:
        look = {name: max(1, math.ceil(fraction * count)) for name, count in key_counts.items()}
        if fraction < 1.0:
            fewest = min(items_at(name, n) for name, n in look.items())
            if fewest < policy.min_look_items or (looks and look == looks[-1]) or look == dict(key_counts):
                continue
        looks.append(look)
    return looks


def with_levels(policy: ResolvedPolicy, levels: kernel.Levels) -> ResolvedPolicy:
    """The policy at one look's levels (its two-sided display confidence follows the drop's)."""
    return policy.model_copy(
        update={"alpha": levels.drop, "rise_alpha": levels.rise, "confidence": 1 - 2 * levels.drop}
    )


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

    def left_out(self, dimension: Dimension, scenario: str) -> list[str]:
        """The scenarios of the check that the profile does not run (`left_out`)."""
        wanted = dimension.scenarios if scenario == OVERALL else (scenario,)
        return [name for name in wanted if self.evaluator.left_out(dimension, name)]

    def available(self, dimension: Dimension, scenario: str) -> tuple[list[str], dict[str, str]]:
        """The scenarios of the check that have data, and why the others have none; the ones the
        profile leaves out are neither (`left_out`)."""
        wanted = dimension.scenarios if scenario == OVERALL else (scenario,)
        left_out = self.left_out(dimension, scenario)
        available, missing = [], {}
        for name in wanted:
            if name in left_out:
                continue
            try:
                self.evaluator.scenario_data(dimension, name)
                available.append(name)
            except MissingDataError as exc:
                missing[name] = str(exc)
        return available, missing

    def runs(
        self, dimension: Dimension, scenarios: list[str], model: ModelHandle, look: Look | None = None
    ) -> dict[str, ScenarioRun]:
        # The dimension's checked scenarios go to the engine together, whichever check asks first
        # (a scenario's own test runs before the overall one): the others then read the cache.
        self.evaluator.prepare(dimension, list(dict.fromkeys([*scenarios, *self._scope(dimension)])), model, look)
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
        keys = {name: self.evaluator.key_count(dimension, name) for name in scope}
        return look_sizes(keys, lambda name, n: len(self.evaluator.items_at(dimension, name, n)), policy)

    def stop(self, dimension: Dimension, variant: str) -> Stop:
        """Run the (dimension, variant) in looks and stop at the first that is clear either way.

        The looks spend the check's alpha by an O'Brien-Fleming-type function of the share of
        items seen (kernel.look_levels): almost none early, nearly all at the last look, and all of
        them together at most the check's alpha, so early stopping adds nothing to the family-wise
        error. Seed groups are judged on every item (no interim looks).
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
            total = sum(len(self.evaluator.items_at(dimension, name)) for name in scope)
            sizes = [
                sum(len(self.evaluator.items_at(dimension, name, n)) for name, n in look.items()) for look in looks
            ]
            spent = kernel.look_levels(policy.levels, [size / total for size in sizes])
            for number, (look, levels) in enumerate(zip(looks[:-1], spent, strict=False), start=1):
                dense = self.runs(dimension, list(scope), self.base_model, look)
                compressed = self.runs(dimension, list(scope), self.variant_model(variant), look)
                interim = with_levels(policy, levels)
                decision, comparison = interim_decision(dimension, judged, dense, compressed, interim)
                if decision:
                    stop = Stop(
                        look,
                        f"stopped early at look {number} of {len(looks)} ({comparison.n_items} of {total} items): "
                        f"{decision} clear at {confidence_label(1 - 2 * levels.drop)} confidence",
                        levels,
                    )
                    break
            else:
                stop = Stop(looks[-1], None, spent[-1])
        self._stops[memo] = stop
        return stop

    def check(self, dimension: Dimension, scenario: str, variant: str) -> CheckResult:
        """Score dense and variant on the same items and judge the drop; NoData when nothing can be scored."""
        left_out = self.left_out(dimension, scenario)
        if scenario != OVERALL and left_out:
            raise LeftOut(dimension.name, scenario, self.profile, required=not self._overall_selected(dimension))
        available, missing = self.available(dimension, scenario)
        notes = []  # what the check is judged without
        if left_out:
            notes.append(f"left out by the {self.profile} profile: " + ", ".join(sorted(left_out)))
        if not available:
            raise NoData(f"{dimension.name}/{scenario}", "no data", "; ".join([*missing.values(), *notes]))
        if missing:
            notes.append("missing scenarios: " + ", ".join(sorted(missing)))
        alone = scenario != OVERALL and not self._overall_selected(dimension)
        policy = self.thresholds.policy(
            dimension.name, None if scenario == OVERALL else scenario, judged_alone=alone, profile=self.profile
        )
        stop = self.stop(dimension, variant)
        if stop.levels and (scenario == OVERALL or alone):
            policy = with_levels(policy, stop.levels)  # the stopping check's own look level
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
        if notes:
            partial = "; ".join(note for note in (comparison.partial, *notes) if note)
            comparison = dataclasses.replace(comparison, partial=partial)
        return CheckResult(comparison, dense, compressed, missing)
