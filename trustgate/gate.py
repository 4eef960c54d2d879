"""The gate: a paired comparison of variant and dense on the same items, against the policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from trustgate.dimension import Dimension
from trustgate.evaluation import ScenarioRun
from trustgate.stats import Interval, bootstrap_interval, decide, is_binary, mcnemar_exact, paired_bootstrap_drop
from trustgate.thresholds import ResolvedPolicy

OVERALL = "overall"


@dataclass(frozen=True)
class Comparison:
    """Everything a verdict rests on; serialisable for reports and xdist."""

    dimension: str
    scenario: str
    variant: str
    dense_score: float
    variant_score: float
    dense_interval: Interval
    variant_interval: Interval
    drop: float
    drop_interval: Interval
    dense_refusal: float
    variant_refusal: float
    n_items: int
    margin: float
    floor: float | None
    rule: str
    max_refusal_rise: float
    tier: str
    passed: bool
    failures: tuple[str, ...]
    mcnemar_p: float | None
    source: str
    partial: str | None

    @property
    def refusal_rise(self) -> float:
        return self.variant_refusal - self.dense_refusal

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """The one-line verdict: dimension, scenario, both scores, the drop and its interval, the margin."""
        verdict = "PASS" if self.passed else "FAIL"
        text = (
            f"{verdict} {self.dimension}/{self.scenario} [{self.variant}]: dense {self.dense_score:.2f} "
            f"(refusal {self.dense_refusal:.1f}%) -> variant {self.variant_score:.2f} "
            f"(refusal {self.variant_refusal:.1f}%); drop {self.drop:+.2f} "
            f"{self.drop_interval.confidence:.0%} CI {self.drop_interval}; allowed {self.margin:.2f} "
            f"(rule {self.rule}, n={self.n_items})"
        )
        if self.partial:
            text += f"; PARTIAL: {self.partial}"
        if self.failures:
            text += "; " + "; ".join(self.failures)
        return text


def _strata(runs: Mapping[str, ScenarioRun]) -> dict[str, dict[str, np.ndarray]]:
    return {scenario: run.columns for scenario, run in runs.items()}


def _check_paired(dense: Mapping[str, ScenarioRun], variant: Mapping[str, ScenarioRun]) -> None:
    for scenario, run in dense.items():
        if [i.id for i in run.items] != [i.id for i in variant[scenario].items]:
            raise ValueError(f"{run.dimension}/{scenario}: dense and variant were scored on different items")


def compare(
    dimension: Dimension,
    scenario: str,
    dense: Mapping[str, ScenarioRun],
    variant: Mapping[str, ScenarioRun],
    policy: ResolvedPolicy,
) -> Comparison:
    """Compare one scenario (one run each) or the dimension overall (all available scenarios)."""
    _check_paired(dense, variant)

    def statistic(strata: Mapping[str, Mapping[str, np.ndarray]]) -> float:
        scores = {name: dimension.metric(columns) for name, columns in strata.items()}
        return scores[next(iter(scores))] if scenario != OVERALL else dimension.combine(scores)

    dense_strata, variant_strata = _strata(dense), _strata(variant)
    dense_score, variant_score = statistic(dense_strata), statistic(variant_strata)
    drop = dense_score - variant_score
    args = {"resamples": policy.bootstrap_resamples, "confidence": policy.confidence, "seed": policy.seed}
    drop_interval = paired_bootstrap_drop(statistic, dense_strata, variant_strata, **args)
    dense_refusal = float(np.mean([r.refusal_rate for r in dense.values()]))
    variant_refusal = float(np.mean([r.refusal_rate for r in variant.values()]))

    dense_items = np.concatenate([c["score"] for c in dense_strata.values()])
    variant_items = np.concatenate([c["score"] for c in variant_strata.values()])
    mcnemar = (
        mcnemar_exact(dense_items == 1, variant_items == 1)
        if is_binary(dense_items) and is_binary(variant_items)
        else None
    )

    failures = []
    if not decide(policy.rule, drop, drop_interval, policy.margin):
        failures.append(f"drop {drop:.2f} exceeds margin {policy.margin:.2f} under rule {policy.rule}")
    if policy.floor is not None and variant_score < policy.floor:
        failures.append(f"variant score {variant_score:.2f} below floor {policy.floor:.2f}")
    if variant_refusal - dense_refusal > policy.max_refusal_rise:
        failures.append(
            f"refusal/no-answer rate rose {variant_refusal - dense_refusal:.1f} points "
            f"(allowed {policy.max_refusal_rise:.1f})"
        )
    partial = "; ".join(sorted({r.partial for r in dense.values() if r.partial})) or None
    return Comparison(
        dimension=dimension.name,
        scenario=scenario,
        variant=next(iter(variant.values())).model,
        dense_score=dense_score,
        variant_score=variant_score,
        dense_interval=bootstrap_interval(statistic, dense_strata, **args),
        variant_interval=bootstrap_interval(statistic, variant_strata, **args),
        drop=drop,
        drop_interval=drop_interval,
        dense_refusal=dense_refusal,
        variant_refusal=variant_refusal,
        n_items=int(dense_items.size),
        margin=policy.margin,
        floor=policy.floor,
        rule=policy.rule,
        max_refusal_rise=policy.max_refusal_rise,
        tier=policy.tier,
        passed=not failures or policy.tier == "informational",
        failures=tuple(failures),
        mcnemar_p=mcnemar,
        source=next(iter(dense.values())).source,
        partial=partial,
    )
