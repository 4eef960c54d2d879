"""The gate: a paired comparison of variant and dense on the same items, against the policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from trustgate.dimensions.base import Dimension
from trustgate.dimensions.metrics import AnswerRate, as_item_metric
from trustgate.dimensions.registry import OVERALL
from trustgate.evaluation.evaluator import ScenarioRun
from trustgate.gate import kernel
from trustgate.gate.kernel import Evidence, Stratum, Verdict
from trustgate.gate.policy import ResolvedPolicy
from trustgate.gate.stats import (
    Interval,
    Statistic,
    bootstrap_interval,
    is_binary,
    mcnemar_exact,
    seed_spread,
)

__all__ = ["OVERALL", "Comparison", "check_evidence", "compare", "compare_seeds"]


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
    dense_fingerprint: str = ""
    variant_fingerprint: str = ""
    judged: str = "variant"  # or "mean of N seeds" / "worst seed (name)" for a seed group
    seeds: tuple[tuple[str, float, float], ...] = ()  # (variant, score, refusal %) per seed
    seed_sd: float | None = None
    inconclusive: str | None = None  # why the items cannot tell (then neither PASS nor FAIL)
    detectable_drop: float = float("nan")  # smallest true drop this rule fails with 80% power at this n
    stopped: str | None = None  # the check's items came from an early look of a sequential run
    flips: float = float("nan")  # share of items whose outcome changed between dense and the variant
    test: str = ""  # the test behind the verdict: "exact score test" or "jackknife t (G keys, df d)"

    @property
    def refusal_rise(self) -> float:
        return self.variant_refusal - self.dense_refusal

    @property
    def verdict(self) -> Verdict:
        """PASS; FAIL; INCONCLUSIVE when the items cannot tell; WARN for an informational check
        that would have failed (or an inconclusive one under `inconclusive = "warn"`)."""
        if self.inconclusive:
            return Verdict.INCONCLUSIVE
        if not self.passed:
            return Verdict.FAIL
        return Verdict.WARN if self.failures else Verdict.PASS

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Comparison:
        """The inverse of `as_dict` (after a trip through JSON, as from an xdist worker)."""
        fields = dict(raw)
        fields.pop("verdict", None)  # derived; summary.json carries it for readers
        for key in ("dense_interval", "variant_interval", "drop_interval"):
            fields[key] = Interval(**fields[key])
        fields["failures"] = tuple(fields["failures"])
        fields["seeds"] = tuple(tuple(seed) for seed in fields.get("seeds") or ())
        return cls(**fields)

    def line(self) -> str:
        """The one-line verdict: dimension, scenario, both scores, the drop and its interval, the margin."""
        verdict = self.verdict if self.verdict != "WARN" else "PASS"
        text = (
            f"{verdict} {self.dimension}/{self.scenario} [{self.variant}]: dense {self.dense_score:.2f} "
            f"(refusal {self.dense_refusal:.1f}%) -> variant {self.variant_score:.2f} "
            f"(refusal {self.variant_refusal:.1f}%); drop {self.drop:+.2f} "
            f"{self.drop_interval.level} CI {self.drop_interval}; allowed {self.margin:.2f} "
            f"(rule {self.rule}, n={self.n_items}, {self.test or 'test'}, detectable drop {_detectable(self)}); "
            f"flips {self.flips:.1%}"
        )
        if self.inconclusive:
            text += f"; INCONCLUSIVE: {self.inconclusive}"
        if self.stopped:
            text += f"; {self.stopped}"
        if self.seeds:
            text += f"; judged on the {self.judged}, seed sd {self.seed_sd:.2f}"
        if self.partial:
            text += f"; PARTIAL: {self.partial}"
        if self.failures:
            text += "; " + "; ".join(self.failures)
        return text


def _display_bootstrap(policy: ResolvedPolicy, dense: Mapping[str, ScenarioRun]) -> dict[str, Any]:
    """The score intervals' bootstrap (display only): whole sample keys under resample = "sample_key"."""
    keys = unit_labels(policy, dense) if policy.resample == "sample_key" else None
    return {"resamples": policy.bootstrap_resamples, "confidence": policy.confidence, "seed": policy.seed, "keys": keys}


def _detectable(comparison: Comparison) -> str:
    value = comparison.detectable_drop
    return f"{value:.2f}" if np.isfinite(value) else "none at this n"


def _strata(runs: Mapping[str, ScenarioRun]) -> dict[str, dict[str, np.ndarray]]:
    return {scenario: run.columns for scenario, run in runs.items()}


def _check_paired(dense: Mapping[str, ScenarioRun], variant: Mapping[str, ScenarioRun]) -> None:
    for scenario, run in dense.items():
        if [i.id for i in run.items] != [i.id for i in variant[scenario].items]:
            raise ValueError(f"{run.dimension}/{scenario}: dense and variant were scored on different items")


def _statistic(dimension: Dimension, scenario: str) -> Statistic:
    def statistic(strata: Mapping[str, Mapping[str, np.ndarray]]) -> float:
        scores = {name: dimension.metric(columns) for name, columns in strata.items()}
        return scores[next(iter(scores))] if scenario != OVERALL else dimension.combine(scores)

    return statistic


@cache
def _combine_coefficients(dimension: Dimension, scenarios: tuple[str, ...]) -> tuple[float, ...]:
    """The weight of each scenario's score in the dimension's: `combine` is linear (a mean, or
    privacy's 0.4/0.3/0.3), so probing it with unit scores reads them off; checked on a random point."""
    zero = {name: 0.0 for name in scenarios}
    weights = tuple(float(dimension.combine(zero | {name: 1.0})) for name in scenarios)
    probe = np.random.default_rng(0).uniform(0, 100, len(scenarios))
    if abs(dimension.combine(dict(zip(scenarios, probe, strict=True))) - float(np.dot(weights, probe))) > 1e-6:
        raise ValueError(f"{dimension.name}: combine is not linear in the scenario scores; the gate's tests need it")
    return weights


def unit_labels(policy: ResolvedPolicy, runs: Mapping[str, ScenarioRun]) -> dict[str, list[str]]:
    """Each item's unit: its sample key (shared across the scenarios that reuse a prompt, so
    those leave the jackknife together) under resample = "sample_key", else the item itself."""
    by_key = policy.resample == "sample_key"
    return {
        scenario: [
            (item.sample_key if by_key and item.sample_key else f"{scenario}\x00{item.id}") for item in run.items
        ]
        for scenario, run in runs.items()
    }


def _unit_indices(labels: Mapping[str, list[str]]) -> dict[str, np.ndarray]:
    index: dict[str, int] = {}
    return {
        s: np.array([index.setdefault(label, len(index)) for label in names], dtype=int) for s, names in labels.items()
    }


def check_evidence(
    dimension: Dimension,
    scenario: str,
    dense: Mapping[str, ScenarioRun],
    variants: Sequence[Mapping[str, ScenarioRun]],
    policy: ResolvedPolicy,
) -> tuple[Evidence, Evidence]:
    """The kernel's evidence for the drop of the score and for the rise of the refusal rate (as a
    drop of the answer rate), the variants judged on their mean (one variant, or a seed group)."""
    names = tuple(dense)
    coefficients = (1.0,) if scenario != OVERALL else _combine_coefficients(dimension, names)
    units = _unit_indices(unit_labels(policy, dense))

    def strata(metric_of) -> list[Stratum]:
        return [
            Stratum(
                metric_of(name),
                dense[name].columns,
                tuple(v[name].columns for v in variants),
                units[name],
                coefficient,
            )
            for name, coefficient in zip(names, coefficients, strict=True)
        ]

    drop = kernel.paired_evidence(strata(lambda name: as_item_metric(dimension.metric)))
    rise = kernel.paired_evidence(strata(lambda name: AnswerRate(as_item_metric(dense[name].refusal_metric))))
    return drop, rise


def _refusal(dimension: Dimension, runs: Mapping[str, ScenarioRun]) -> float:
    """The refusal/no-answer rate (%): each scenario's by its run's refusal metric, combined as scores are."""
    return float(dimension.combine({name: run.refusal_metric(run.columns) for name, run in runs.items()}))


def _item_scores(runs: Mapping[str, ScenarioRun]) -> np.ndarray:
    return np.concatenate([run.columns["score"] for run in runs.values()])


def _mcnemar(dense: Mapping[str, ScenarioRun], variant: Mapping[str, ScenarioRun]) -> float | None:
    """Exact McNemar p when every item score is 0/1 for both models; otherwise None."""
    dense_items, variant_items = _item_scores(dense), _item_scores(variant)
    if is_binary(dense_items) and is_binary(variant_items):
        return mcnemar_exact(dense_items == 1, variant_items == 1)
    return None


def _base_answer_rate(dimension: Dimension, dense: Mapping[str, ScenarioRun]) -> float | None:
    """The share (%) of the dense model's items with a scorable answer, over the scenarios where a
    refusal carries no signal; None when every scenario scores refusals."""
    silent = [run for name, run in dense.items() if not dimension.refusal_carries_signal(name)]
    if not silent:
        return None
    refusals = np.concatenate([run.columns["refusal"] for run in silent])
    return float(100.0 * (1.0 - np.mean(refusals))) if refusals.size else 0.0


def _failures(
    policy: ResolvedPolicy, decision: kernel.Decision, drop: Evidence, rise: Evidence, score: float
) -> list[str]:
    failures = []
    if bool(decision.drop_fails):
        failures.append(f"drop {float(drop.estimate):.2f} exceeds margin {policy.margin:.2f} under rule {policy.rule}")
    if bool(decision.floor_fails):
        failures.append(f"variant score {score:.2f} below floor {policy.floor:.2f}")
    if bool(decision.rise_fails):
        low, high = rise.bounds(policy.rise_alpha)
        failures.append(
            f"refusal/no-answer rate rose {float(rise.estimate):.1f} points, "
            f"{1 - 2 * policy.rise_alpha:.4%} CI [{float(low):.1f}, {float(high):.1f}] "
            f"(allowed {policy.max_refusal_rise:.1f})"
        )
    return failures


def _inconclusive_reason(
    dimension: Dimension,
    dense: Mapping[str, ScenarioRun],
    policy: ResolvedPolicy,
    decision: kernel.Decision,
    interval: Interval,
    detectable: float,
    rise_estimate: float = float("nan"),
) -> tuple[str, str] | None:
    """Why the check cannot tell, with the setting ("fail" or "warn") that decides whether that blocks."""
    if bool(decision.base_silent):
        answered = _base_answer_rate(dimension, dense)
        why = (
            f"the base model does not answer this scenario (scorable answers {answered:.1f}% of items, "
            f"at least {policy.min_base_answer_rate:.1f}% needed); nothing the variant does can be compared"
        )
        return why, policy.inconclusive
    if decision.few_units is not None and bool(decision.few_units):
        why = (
            f"too few sample keys to tell: a jackknife over fewer than {kernel.MIN_JACKKNIFE_UNITS} keys cannot "
            "hold its level (its variance can be near zero by chance), so it decides nothing; "
            "raise --trust-limit or use --trust-profile release"
        )
        return why, policy.too_few_items
    if decision.rise_unclear is not None and bool(decision.rise_unclear):
        why = (
            f"too few items to tell: the refusal/no-answer rate rose by {rise_estimate:+.1f} points, more than "
            f"the bound of {policy.max_refusal_rise:.1f}, and at this n that is proven neither beyond it nor within "
            "it; raise --trust-limit or use --trust-profile release"
        )
        return why, policy.too_few_items
    if bool(decision.too_few) and not (np.isfinite(interval.low) and np.isfinite(interval.high)):
        why = (
            "too few items to tell: the drop's interval cannot be computed (a scenario with a single sample "
            "key is left empty when that key is left out), so the test decides nothing; "
            "raise --trust-limit or use --trust-profile release"
        )
        return why, policy.too_few_items
    if bool(decision.too_few):
        can = f"would catch only a drop of {detectable:.2f}" if np.isfinite(detectable) else "cannot detect any drop"
        why = (
            f"too few items to tell: the interval {interval} holds the margin {policy.margin:.2f}, and at this n "
            f"rule {policy.rule} {can} (80% power), more than twice the margin; "
            "raise --trust-limit or use --trust-profile release"
        )
        return why, policy.too_few_items
    return None


def _test_name(evidence: Evidence) -> str:
    if evidence.method == "score":
        return f"exact score test, {evidence.n} items"
    return f"jackknife t, {int(np.max(evidence.units))} units, df {float(evidence.df):.1f}"


def flips_of(dense: Mapping[str, ScenarioRun], variant: Mapping[str, ScenarioRun]) -> float:
    return kernel.flips([run.columns for run in dense.values()], [variant[name].columns for name in dense])


def _judge(
    dimension: Dimension,
    dense: Mapping[str, ScenarioRun],
    policy: ResolvedPolicy,
    drop: Evidence,
    rise: Evidence,
    dense_score: float,
    variant_score: float,
    flips: float,
) -> dict[str, Any]:
    """The kernel's decision on a check's evidence, as Comparison fields."""
    detectable = float(kernel.check_detectable(drop, policy.margin, policy.alpha, flips, ceiling=dense_score))
    answered = _base_answer_rate(dimension, dense)
    silent = answered is not None and answered < policy.min_base_answer_rate - 1e-9  # 4 of 40 is 10%, not 9.99...
    floor_fails = policy.floor is not None and variant_score < policy.floor
    decision = kernel.decide(
        policy.rule,
        drop,
        rise,
        policy.margin,
        policy.max_refusal_rise,
        policy.levels,
        floor_fails=floor_fails,
        base_silent=silent,
        detectable=detectable,
    )
    low, high = drop.bounds(policy.alpha)
    # a drop lies in [-100, 100] points: a t interval's ends are shown within it
    interval = Interval(float(np.clip(low, -100, 100)), float(np.clip(high, -100, 100)), 1.0 - 2.0 * policy.alpha)
    failures = _failures(policy, decision, drop, rise, variant_score)
    settings = (policy.inconclusive, policy.too_few_items)
    verdict = kernel.verdict(decision)
    inconclusive = _inconclusive_reason(
        dimension, dense, policy, decision, interval, detectable, float(np.asarray(rise.estimate))
    )
    return {
        "drop_interval": interval,
        "failures": tuple(failures),
        "passed": policy.tier == "informational" or not bool(kernel.blocks(verdict, decision, *settings)),
        "inconclusive": inconclusive[0] if inconclusive else None,
        "detectable_drop": detectable,
        "test": _test_name(drop),
    }


def compare(
    dimension: Dimension,
    scenario: str,
    dense: Mapping[str, ScenarioRun],
    variant: Mapping[str, ScenarioRun],
    policy: ResolvedPolicy,
    *,
    score_intervals: bool = True,
) -> Comparison:
    """Compare one scenario (one run each) or the dimension overall (all available scenarios).

    `score_intervals=False` leaves the dense and variant score intervals NaN (an interim look
    decides on the drop's test alone). Everything else is computed as for a verdict.
    """
    _check_paired(dense, variant)
    statistic = _statistic(dimension, scenario)
    dense_strata, variant_strata = _strata(dense), _strata(variant)
    dense_score, variant_score = statistic(dense_strata), statistic(variant_strata)
    drop, rise = check_evidence(dimension, scenario, dense, [variant], policy)
    flips = flips_of(dense, variant)
    first_dense, first_variant = next(iter(dense.values())), next(iter(variant.values()))
    skipped = Interval(float("nan"), float("nan"), policy.confidence)
    args = _display_bootstrap(policy, dense)
    return Comparison(
        dimension=dimension.name,
        scenario=scenario,
        variant=first_variant.model,
        dense_score=dense_score,
        variant_score=variant_score,
        dense_interval=bootstrap_interval(statistic, dense_strata, **args) if score_intervals else skipped,
        variant_interval=bootstrap_interval(statistic, variant_strata, **args) if score_intervals else skipped,
        drop=dense_score - variant_score,
        dense_refusal=_refusal(dimension, dense),
        variant_refusal=_refusal(dimension, variant),
        n_items=int(_item_scores(dense).size),
        margin=policy.margin,
        floor=policy.floor,
        rule=policy.rule,
        max_refusal_rise=policy.max_refusal_rise,
        tier=policy.tier,
        mcnemar_p=_mcnemar(dense, variant),
        source=first_dense.source,
        partial="; ".join(sorted({r.partial for r in dense.values() if r.partial})) or None,
        dense_fingerprint=first_dense.fingerprint,
        variant_fingerprint=first_variant.fingerprint,
        flips=flips,
        **_judge(dimension, dense, policy, drop, rise, dense_score, variant_score, flips),
    )


def compare_seeds(
    dimension: Dimension,
    scenario: str,
    group: str,
    dense: Mapping[str, ScenarioRun],
    seeds: Mapping[str, Mapping[str, ScenarioRun]],
    policy: ResolvedPolicy,
    worst_seed: bool,
) -> Comparison:
    """Judge the calibration seeds of one method together: their mean drop, or every seed's own.

    Mean: one test of the seed-mean drop (every seed on the same items as dense). worst_seed: the
    group FAILs when any seed's own test fails at its share of the check's alpha (Bonferroni over
    the seeds); the variant score reported is then the worst seed's.
    """
    k = len(seeds)
    per_seed_policy = policy.model_copy(update={"alpha": policy.alpha / k, "rise_alpha": policy.rise_alpha / k})
    per_seed = {name: compare(dimension, scenario, dense, runs, per_seed_policy) for name, runs in seeds.items()}
    worst_name = max(per_seed, key=lambda name: per_seed[name].drop)
    worst = per_seed[worst_name]
    spread = seed_spread([c.variant_score for c in per_seed.values()])
    common = {
        "variant": group,
        "variant_fingerprint": "",
        "seeds": tuple((name, c.variant_score, c.variant_refusal) for name, c in per_seed.items()),
        "seed_sd": spread.sd,
        "judged": f"worst seed ({worst.variant})" if worst_seed else f"mean of {spread.n} seeds",
    }
    if worst_seed:
        failing = [c for c in per_seed.values() if c.failures]
        chosen = max(failing, key=lambda c: c.drop) if failing else worst
        failures = tuple(f"seed {c.variant}: {f}" for c in failing for f in c.failures)
        inconclusive = None if failures else next((c.inconclusive for c in per_seed.values() if c.inconclusive), None)
        blocked = bool(failures) or (inconclusive is not None and policy.inconclusive == "fail")
        return dataclasses.replace(
            chosen,
            **common,
            failures=failures,
            inconclusive=inconclusive,
            passed=policy.tier == "informational" or not blocked,
        )
    statistic = _statistic(dimension, scenario)
    score = float(np.mean([c.variant_score for c in per_seed.values()]))
    refusal = float(np.mean([c.variant_refusal for c in per_seed.values()]))
    drop, rise = check_evidence(dimension, scenario, dense, list(seeds.values()), policy)
    flips = float(np.mean([c.flips for c in per_seed.values()]))
    args = _display_bootstrap(policy, dense)
    return dataclasses.replace(
        worst,
        **common,
        variant_score=score,
        variant_interval=_seed_mean_interval(statistic, [_strata(runs) for runs in seeds.values()], args),
        drop=worst.dense_score - score,
        variant_refusal=refusal,
        mcnemar_p=None,
        flips=flips,
        **_judge(dimension, dense, policy, drop, rise, worst.dense_score, score, flips),
    )


def _seed_mean_interval(statistic: Statistic, strata: list[dict[str, dict[str, np.ndarray]]], args: dict) -> Interval:
    """Interval of the seed-mean score (display only). The seeds' columns sit side by side under
    "<seed>|<column>" keys, so one bootstrap draw picks the same items for every seed."""
    stacked = {
        scenario: {"score": strata[0][scenario]["score"]}
        | {f"{i}|{key}": values for i, seed in enumerate(strata) for key, values in seed[scenario].items()}
        for scenario in strata[0]
    }

    def one_seed(drawn: Mapping[str, Mapping[str, np.ndarray]], i: int) -> dict[str, dict[str, np.ndarray]]:
        prefix = f"{i}|"
        return {
            scenario: {key[len(prefix) :]: v for key, v in columns.items() if key.startswith(prefix)}
            for scenario, columns in drawn.items()
        }

    def seed_mean(drawn: Mapping[str, Mapping[str, np.ndarray]]) -> float:
        return float(np.mean([statistic(one_seed(drawn, i)) for i in range(len(strata))]))

    return bootstrap_interval(seed_mean, stacked, **args)
