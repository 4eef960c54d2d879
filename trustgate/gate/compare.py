"""The gate: a paired comparison of variant and dense on the same items, against the policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from trustgate.dimensions.base import Dimension
from trustgate.dimensions.registry import OVERALL
from trustgate.evaluation.evaluator import ScenarioRun
from trustgate.gate.policy import ResolvedPolicy
from trustgate.gate.stats import (
    EVIDENCE_RULES,
    Interval,
    Statistic,
    bootstrap_interval,
    decide,
    detectable_drop,
    is_binary,
    mcnemar_exact,
    paired_bootstrap_drop,
    paired_bootstrap_group_drop,
    rise_fails,
    seed_spread,
)

__all__ = ["OVERALL", "Comparison", "compare", "compare_seeds", "precise_enough", "refusal_rise_interval"]


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

    @property
    def refusal_rise(self) -> float:
        return self.variant_refusal - self.dense_refusal

    @property
    def verdict(self) -> str:
        """PASS; FAIL; INCONCLUSIVE when the items cannot tell; WARN for an informational check
        that would have failed (or an inconclusive one under `inconclusive = "warn"`)."""
        if self.inconclusive:
            return "INCONCLUSIVE"
        if not self.passed:
            return "FAIL"
        return "WARN" if self.failures else "PASS"

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
            f"(rule {self.rule}, n={self.n_items}, detectable drop {self.detectable_drop:.2f})"
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


def _bootstrap(policy: ResolvedPolicy, dense: Mapping[str, ScenarioRun]) -> dict[str, Any]:
    """A check's bootstrap settings; under `resample = "sample_key"` the items' sample keys
    (an item without one is its own key), so that a resample draws whole keys."""
    keys = None
    if policy.resample == "sample_key":
        keys = {scenario: [item.sample_key or item.id for item in run.items] for scenario, run in dense.items()}
    return {"resamples": policy.bootstrap_resamples, "confidence": policy.confidence, "seed": policy.seed, "keys": keys}


def _refusal_statistic(dimension: Dimension, runs: Mapping[str, ScenarioRun]) -> Statistic:
    """The refusal/no-answer rate (%) over strata: each scenario's rate by its run's refusal metric
    (the one `run.refusal_rate` uses; the evaluator gives every run its dimension's, and privacy
    averages per file first), the scenarios combined as their scores are (privacy: 0.4/0.3/0.3).
    Unlike the score, one scenario's rate also goes through `combine`, as it always has."""
    metrics = {scenario: run.refusal_metric for scenario, run in runs.items()}

    def statistic(strata: Mapping[str, Mapping[str, np.ndarray]]) -> float:
        return float(dimension.combine({name: metrics[name](columns) for name, columns in strata.items()}))

    return statistic


def _refusal(dimension: Dimension, runs: Mapping[str, ScenarioRun]) -> float:
    return _refusal_statistic(dimension, runs)(_strata(runs))


def _item_scores(runs: Mapping[str, ScenarioRun]) -> np.ndarray:
    return np.concatenate([run.columns["score"] for run in runs.values()])


def _mcnemar(dense: Mapping[str, ScenarioRun], variant: Mapping[str, ScenarioRun]) -> float | None:
    """Exact McNemar p when every item score is 0/1 for both models; otherwise None."""
    dense_items, variant_items = _item_scores(dense), _item_scores(variant)
    if is_binary(dense_items) and is_binary(variant_items):
        return mcnemar_exact(dense_items == 1, variant_items == 1)
    return None


def _score_failure(policy: ResolvedPolicy, drop: float, interval: Interval) -> str | None:
    if decide(policy.rule, drop, interval, policy.margin):
        return None
    return f"drop {drop:.2f} exceeds margin {policy.margin:.2f} under rule {policy.rule}"


def _failures(
    policy: ResolvedPolicy,
    drop: float,
    interval: Interval,
    score: float,
    refusal_rise: float,
    refusal_interval: Callable[[], Interval],
) -> list[str]:
    failures = [failure] if (failure := _score_failure(policy, drop, interval)) else []
    if policy.floor is not None and score < policy.floor:
        failures.append(f"variant score {score:.2f} below floor {policy.floor:.2f}")
    if rise_fails(policy.rule, refusal_rise, refusal_interval, policy.max_refusal_rise):
        shown = f", {refusal_interval().level} CI {refusal_interval()}" if policy.rule in EVIDENCE_RULES else ""
        failures.append(
            f"refusal/no-answer rate rose {refusal_rise:.1f} points{shown} (allowed {policy.max_refusal_rise:.1f})"
        )
    return failures


def _base_answer_rate(dimension: Dimension, dense: Mapping[str, ScenarioRun]) -> float | None:
    """The share (%) of the dense model's items with a scorable answer, over the scenarios where a
    refusal carries no signal; None when every scenario scores refusals."""
    silent = [run for name, run in dense.items() if not dimension.refusal_carries_signal(name)]
    if not silent:
        return None
    refusals = np.concatenate([run.columns["refusal"] for run in silent])
    return float(100.0 * (1.0 - np.mean(refusals))) if refusals.size else 0.0


def precise_enough(detectable: float, margin: float) -> bool:
    """Can the items tell? The rule catches a drop of twice the margin with 80% power at this n
    (a zero margin asks for no precision: any drop fails it)."""
    return margin <= 0 or detectable <= 2 * margin


def _inconclusive(
    dimension: Dimension,
    dense: Mapping[str, ScenarioRun],
    policy: ResolvedPolicy,
    interval: Interval,
    detectable: float,
    failed: bool,
) -> tuple[str, str] | None:
    """Why the check cannot tell, with the setting ("fail" or "warn") that decides whether that
    blocks; None when it can. The base model not answering wins over everything (`inconclusive`);
    too few items only replaces a PASS (`failed`: the rule, the floor or the refusal bound already
    failed the check, a finding in itself) and blocks as the profile's `too_few_items` says."""
    answered = _base_answer_rate(dimension, dense)
    if answered is not None and answered < policy.min_base_answer_rate - 1e-9:  # 4 of 40 is 10%, not 9.99...
        why = (
            f"the base model does not answer this scenario (scorable answers {answered:.1f}% of items, "
            f"at least {policy.min_base_answer_rate:.1f}% needed); nothing the variant does can be compared"
        )
        return why, policy.inconclusive
    straddles = interval.low <= policy.margin < interval.high
    if straddles and not failed and not precise_enough(detectable, policy.margin):
        why = (
            f"too few items to tell: the interval {interval} holds the margin {policy.margin:.2f}, and at this n "
            f"rule {policy.rule} would catch only a drop of {detectable:.2f} (80% power), more than twice the "
            "margin; raise --limit or use --profile release"
        )
        return why, policy.too_few_items
    return None


def refusal_rise_interval(
    dimension: Dimension, dense: Mapping[str, ScenarioRun], variant: Mapping[str, ScenarioRun], policy: ResolvedPolicy
) -> Interval:
    """Paired bootstrap interval of the refusal/no-answer rise (variant - dense, points), the
    scenarios combined as their scores are (the statistic of `_refusal`)."""
    refusal = _refusal_statistic(dimension, dense)
    args = _bootstrap(policy, dense)
    fall = paired_bootstrap_drop(refusal, _strata(dense), _strata(variant), **args)  # dense - variant
    return Interval(-fall.high, -fall.low, fall.confidence)


def _passed(failures: Sequence[str], inconclusive: tuple[str, str] | None, policy: ResolvedPolicy) -> bool:
    if policy.tier == "informational":
        return True
    if inconclusive:
        return inconclusive[1] == "warn"
    return not failures


def compare(
    dimension: Dimension,
    scenario: str,
    dense: Mapping[str, ScenarioRun],
    variant: Mapping[str, ScenarioRun],
    policy: ResolvedPolicy,
    *,
    score_intervals: bool = True,
    refusal_interval: Interval | None = None,
) -> Comparison:
    """Compare one scenario (one run each) or the dimension overall (all available scenarios).

    `score_intervals=False` leaves the dense and variant score intervals NaN: an interim look of a
    sequential run decides on the drop interval alone, and those two bootstraps would be half
    its bootstrap work per look. Everything else is computed as for a verdict. `refusal_interval`:
    the refusal rise's interval at this policy, where the caller has it already (an interim look
    needs it for its own decision); otherwise it is bootstrapped here, and only if a bound needs it.
    """
    _check_paired(dense, variant)
    statistic = _statistic(dimension, scenario)
    dense_strata, variant_strata = _strata(dense), _strata(variant)
    dense_score, variant_score = statistic(dense_strata), statistic(variant_strata)
    drop = dense_score - variant_score
    args = _bootstrap(policy, dense)
    drop_interval = paired_bootstrap_drop(statistic, dense_strata, variant_strata, **args)
    dense_refusal, variant_refusal = _refusal(dimension, dense), _refusal(dimension, variant)
    rise_interval = cache(lambda: refusal_interval or refusal_rise_interval(dimension, dense, variant, policy))
    failures = _failures(policy, drop, drop_interval, variant_score, variant_refusal - dense_refusal, rise_interval)
    detectable = detectable_drop(drop_interval, policy.rule, policy.margin)
    inconclusive = _inconclusive(dimension, dense, policy, drop_interval, detectable, bool(failures))
    first_dense, first_variant = next(iter(dense.values())), next(iter(variant.values()))
    skipped = Interval(float("nan"), float("nan"), policy.confidence)
    return Comparison(
        dimension=dimension.name,
        scenario=scenario,
        variant=first_variant.model,
        dense_score=dense_score,
        variant_score=variant_score,
        dense_interval=bootstrap_interval(statistic, dense_strata, **args) if score_intervals else skipped,
        variant_interval=bootstrap_interval(statistic, variant_strata, **args) if score_intervals else skipped,
        drop=drop,
        drop_interval=drop_interval,
        dense_refusal=dense_refusal,
        variant_refusal=variant_refusal,
        n_items=int(_item_scores(dense).size),
        margin=policy.margin,
        floor=policy.floor,
        rule=policy.rule,
        max_refusal_rise=policy.max_refusal_rise,
        tier=policy.tier,
        passed=_passed(failures, inconclusive, policy),
        failures=tuple(failures),
        mcnemar_p=_mcnemar(dense, variant),
        source=first_dense.source,
        partial="; ".join(sorted({r.partial for r in dense.values() if r.partial})) or None,
        dense_fingerprint=first_dense.fingerprint,
        variant_fingerprint=first_variant.fingerprint,
        inconclusive=inconclusive[0] if inconclusive else None,
        detectable_drop=detectable,
    )


def _seed_mean_interval(statistic: Statistic, strata: list[dict[str, dict[str, np.ndarray]]], args: dict) -> Interval:
    """Interval of the seed-mean score. The seeds' columns sit side by side under "<seed>|<column>"
    keys, so one bootstrap draw picks the same items for every seed."""
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


def compare_seeds(
    dimension: Dimension,
    scenario: str,
    group: str,
    dense: Mapping[str, ScenarioRun],
    seeds: Mapping[str, Mapping[str, ScenarioRun]],
    policy: ResolvedPolicy,
    worst_seed: bool,
) -> Comparison:
    """Judge the calibration seeds of one method together: their mean drop, or the worst seed's.

    The variant score reported is the seed mean (or the worst seed's score), its spread goes in
    `seeds`; every seed is scored on the same items as dense, so the interval stays paired.
    """
    per_seed = {name: compare(dimension, scenario, dense, runs, policy) for name, runs in seeds.items()}
    statistic = _statistic(dimension, scenario)
    args = _bootstrap(policy, dense)
    reduce = "worst" if worst_seed else "mean"
    strata = [_strata(runs) for runs in seeds.values()]
    drop_interval = paired_bootstrap_group_drop(statistic, _strata(dense), strata, reduce, **args)
    worst_name = max(per_seed, key=lambda name: per_seed[name].drop)
    worst = per_seed[worst_name]
    refusal_statistic = _refusal_statistic(dimension, dense)
    if worst_seed:
        score, refusal, drop = worst.variant_score, worst.variant_refusal, worst.drop
        variant_interval, mcnemar = worst.variant_interval, worst.mcnemar_p
        seed_runs = [_strata(seeds[worst_name])]
    else:
        score = float(np.mean([c.variant_score for c in per_seed.values()]))
        refusal = float(np.mean([c.variant_refusal for c in per_seed.values()]))
        drop, mcnemar = worst.dense_score - score, None
        variant_interval = _seed_mean_interval(statistic, strata, args)
        seed_runs = strata

    def rise_interval() -> Interval:  # the judged seed's, or the seed mean's, rise (variant - dense)
        fall = paired_bootstrap_group_drop(refusal_statistic, _strata(dense), seed_runs, "mean", **args)
        return Interval(-fall.high, -fall.low, fall.confidence)

    failures = _failures(policy, drop, drop_interval, score, refusal - worst.dense_refusal, cache(rise_interval))
    detectable = detectable_drop(drop_interval, policy.rule, policy.margin)
    inconclusive = _inconclusive(dimension, dense, policy, drop_interval, detectable, bool(failures))
    spread = seed_spread([c.variant_score for c in per_seed.values()])
    return dataclasses.replace(
        worst,
        variant=group,
        variant_score=score,
        variant_interval=variant_interval,
        drop=drop,
        drop_interval=drop_interval,
        variant_refusal=refusal,
        passed=_passed(failures, inconclusive, policy),
        inconclusive=inconclusive[0] if inconclusive else None,
        failures=tuple(failures),
        mcnemar_p=mcnemar,
        variant_fingerprint="",
        judged=f"worst seed ({worst.variant})" if worst_seed else f"mean of {spread.n} seeds",
        seeds=tuple((name, c.variant_score, c.variant_refusal) for name, c in per_seed.items()),
        seed_sd=spread.sd,
        detectable_drop=detectable,
    )
