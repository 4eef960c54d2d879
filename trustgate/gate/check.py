"""One gate check: evaluate dense and the variant on a scenario (or a dimension overall),
compare them under the policy, and hand back the comparison with the runs it rests on.

The pytest layer (fixtures/gate.py) turns the result into a test verdict and reports; this
module knows nothing of pytest or of how variants are built (it is given a function for that).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trustgate.dimensions.base import Dimension
from trustgate.evaluation.evaluator import Evaluator, ScenarioRun
from trustgate.gate.compare import OVERALL, Comparison, compare, compare_seeds
from trustgate.gate.policy import Thresholds
from trustgate.gate.seeds import group_of
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


@dataclass
class GateCheck:
    evaluator: Evaluator
    thresholds: Thresholds
    base_model: ModelHandle
    variant_model: Callable[[str], ModelHandle]
    seed_groups: Mapping[str, tuple[str, ...]]
    worst_seed: bool = False

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

    def runs(self, dimension: Dimension, scenarios: list[str], model: ModelHandle) -> dict[str, ScenarioRun]:
        return {name: self.evaluator.run(dimension, name, model) for name in scenarios}

    def check(self, dimension: Dimension, scenario: str, variant: str) -> CheckResult:
        """Score dense and variant on the same items and judge the drop; NoData when nothing can be scored."""
        available, missing = self.available(dimension, scenario)
        if not available:
            raise NoData(f"{dimension.name}/{scenario}", "no data", "; ".join(missing.values()))
        policy = self.thresholds.policy(dimension.name, None if scenario == OVERALL else scenario)
        dense = self.runs(dimension, available, self.base_model)
        if variant in self.seed_groups:
            seeds = {
                name: self.runs(dimension, available, self.variant_model(name)) for name in self.seed_groups[variant]
            }
            comparison = compare_seeds(dimension, scenario, variant, dense, seeds, policy, self.worst_seed)
            worst = min(comparison.seeds, key=lambda seed: seed[1])[0]  # the lowest-scoring seed
            compressed = seeds[worst]
        else:
            if group_of(variant, self.seed_groups):
                # One seed of a group: reported, but the group's test carries the verdict.
                policy = policy.model_copy(update={"tier": "informational"})
            compressed = self.runs(dimension, available, self.variant_model(variant))
            comparison = compare(dimension, scenario, dense, compressed, policy)
        if missing:
            note = "missing scenarios: " + ", ".join(sorted(missing))
            comparison = dataclasses.replace(comparison, partial="; ".join(p for p in (comparison.partial, note) if p))
        return CheckResult(comparison, dense, compressed, missing)
