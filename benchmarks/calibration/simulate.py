"""Replicates judged by the gate's own kernel: looks, spending, evidence, interim and final verdicts."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.calibration.population import (
    ScenarioModel,
    churn_for_flips,
    churn_rate,
    degradation_for,
    refusal_for,
    slots,
    variant_columns,
    without_left_out,
)
from trustgate.dimensions.metrics import AnswerRate
from trustgate.gate import kernel
from trustgate.gate.check import look_sizes, with_levels
from trustgate.gate.policy import Thresholds


@dataclass(frozen=True)
class Condition:
    """What a run of replicates simulates: sizes (profile), how changes move (churn unit), the
    true drop in margins, a refusal rise at the bound, and the share of changed items (None: the
    paired variant's own churn)."""

    name: str
    profile: str = "ci"
    churn_unit: str = "item"
    drop: float = 1.0  # true drop, in units of the dimension's margin
    rise_at_bound: bool = False
    flips: float | None = None


@dataclass
class DimensionResult:
    dimension: str
    verdicts: np.ndarray  # (replicates,) PASS / FAIL / INCONCLUSIVE
    early: np.ndarray  # "" or the interim decision that stopped the run
    drop_fails: np.ndarray
    rise_fails: np.ndarray
    true_drop: float
    margin: float
    alpha: float
    rise_alpha: float
    churn: float
    keys: dict[str, int]
    flips: float  # mean share of changed items


@functools.cache
def embedded_key_counts() -> dict[tuple[str, str], int]:
    """Distinct sample keys of every scenario of the embedded probe sets (the release population)."""
    from trustgate.data import TrustData
    from trustgate.dimensions.registry import all_dimensions

    data = TrustData("embedded")
    counts = {}
    for name, dimension in all_dimensions().items():
        for scenario in dimension.scenarios:
            items = dimension.load(data, scenario).items
            counts[(name, scenario)] = len({item.sample_key or item.id for item in items})
    return counts


def key_counts(models: Sequence[ScenarioModel], thresholds: Thresholds, profile: str) -> dict[str, int]:
    """Sample keys per scenario: the profile's limit (0 = all) on the embedded probe set, as the
    gate selects them; a limit beyond the pool's keys (the pool is an older, smaller ci run) draws
    pool keys more than once, weighted as the kernel counts a unit drawn twice."""
    out = {}
    for model in models:
        name, scenario = model.pool.dimension, model.pool.scenario
        limit = thresholds.evaluation_size(profile, name).limit_for(scenario)
        population = embedded_key_counts().get((name, scenario), model.keys)
        out[scenario] = min(limit, population) if limit else population
    return out


def _units(models: Sequence[ScenarioModel], resample: str, seen: Sequence[int]) -> list[np.ndarray]:
    """Each slot's unit: its draw (a sample key's items together) or the slot itself."""
    units, offset = [], 0
    for model, count in zip(models, seen, strict=True):
        own = np.arange(count) // model.per_key if resample == "sample_key" else np.arange(count)
        units.append(own + offset)
        offset += int(own.max()) + 1
    return units


def simulate_dimension(
    models: Sequence[ScenarioModel], thresholds: Thresholds, condition: Condition, replicates: int, seed: int
) -> DimensionResult:
    name = models[0].pool.dimension
    models = without_left_out(models, thresholds.evaluation_size(condition.profile, name).left_out)
    policy = thresholds.policy(name, None, judged_alone=True, profile=condition.profile)
    rng = np.random.default_rng(seed)
    churn = churn_for_flips(models, condition.flips) if condition.flips is not None else churn_rate(models)
    target = condition.drop * policy.margin
    degrade = [degradation_for(m, target, churn, condition.churn_unit) for m in models]
    short = sum(m.coefficient * (target - d) for m, (p, d) in zip(models, degrade, strict=True) if p >= 1.0)
    room = sum(m.coefficient for m, (p, _) in zip(models, degrade, strict=True) if p < 1.0)
    if target > 0 and short > 1e-9 and room > 0:  # a scenario that cannot drop that far: the others make it up
        degrade = [
            (p, d) if p >= 1.0 else degradation_for(m, target + short / room, churn, condition.churn_unit)
            for m, (p, d) in zip(models, degrade, strict=True)
        ]
    true_drop = float(sum(m.coefficient * d for m, (_, d) in zip(models, degrade, strict=True)))
    refuse = [refusal_for(m, policy.max_refusal_rise) if condition.rise_at_bound else 0.0 for m in models]
    sizes = key_counts(models, thresholds, condition.profile)
    draws = [rng.integers(0, m.keys, (replicates, sizes[m.pool.scenario])) for m in models]
    items = [slots(m, d) for m, d in zip(models, draws, strict=True)]
    variants = [
        variant_columns(m, i, rng, churn=churn, unit=condition.churn_unit, degrade=p, refuse=r)
        for m, i, (p, _), r in zip(models, items, degrade, refuse, strict=True)
    ]
    denses = [{**{c: v[i] for c, v in m.pool.structure.items()}, **{c: v[i] for c, v in m.pool.dense.items()}}
              for m, i in zip(models, items, strict=True)]  # fmt: skip
    per_key = {m.pool.scenario: m.per_key for m in models}
    looks = look_sizes(sizes, lambda scenario, k: k * per_key[scenario], policy)
    total = sum(sizes[s] * per_key[s] for s in sizes)
    spent = kernel.look_levels(policy.levels, [sum(look[s] * per_key[s] for s in look) / total for look in looks])
    early = np.full(replicates, "", dtype=object)
    early_rise = np.zeros(replicates, dtype=bool)
    final = None
    flips_seen = 0.0
    for number, (look, levels) in enumerate(zip(looks, spent, strict=True)):
        seen = [look[m.pool.scenario] * m.per_key for m in models]
        dense = [{c: v[:, :k] for c, v in d.items()} for d, k in zip(denses, seen, strict=True)]
        variant = [
            {**{c: v[:, :k] for c, v in d.items() if c in m.pool.structure}, **{c: v[:, :k] for c, v in vc.items()}}
            for m, d, vc, k in zip(models, denses, variants, seen, strict=True)
        ]
        units = _units(models, policy.resample, seen)

        def strata(metric_of, dense=dense, variant=variant, units=units):
            return [
                kernel.Stratum(metric_of(m), d, (v,), u, m.coefficient)
                for m, d, v, u in zip(models, dense, variant, units, strict=True)
            ]

        drop = kernel.paired_evidence(strata(lambda m: m.metric))
        rise = kernel.paired_evidence(strata(lambda m: AnswerRate(m.refusal)))
        at_look = with_levels(policy, levels)
        ones = [np.ones(k) for k in seen]
        dense_score = sum(m.coefficient * m.metric.weighted(d, w) for m, d, w in zip(models, dense, ones, strict=True))
        changed = sum(
            np.sum(np.abs(v["score"] - d["score"]) > 1e-9, axis=-1) for d, v in zip(dense, variant, strict=True)
        )
        flips = changed / sum(seen)
        flips_seen = float(np.mean(flips))
        detectable = kernel.check_detectable(drop, policy.margin, at_look.alpha, flips, dense_score)
        silent = [d["refusal"] for m, d in zip(models, dense, strict=True) if m.silent]
        if silent:
            answered = 100.0 * (1.0 - np.concatenate(silent, axis=-1).mean(axis=-1))
            base_silent = answered < policy.min_base_answer_rate - 1e-9
        else:
            base_silent = np.zeros(replicates, dtype=bool)
        if number < len(looks) - 1:
            decision = kernel.interim_decision(
                policy.rule, drop, rise, policy.margin, policy.max_refusal_rise, levels,
                detectable=detectable, keys=_fewest_keys(models, draws, look), base_silent=base_silent,
            )  # fmt: skip
            # which test stopped it: the rise's own rule at the look's level (attribution only)
            rise_hit = kernel.rule_fails("drop_proven", rise, policy.max_refusal_rise, levels.rise)
            early_rise |= (early == "") & (decision == "FAIL") & np.asarray(rise_hit)
            early = np.where((early == "") & (decision != ""), decision, early)
            continue
        final = kernel.decide(
            policy.rule, drop, rise, policy.margin, policy.max_refusal_rise, levels,
            base_silent=base_silent, detectable=detectable,
        )  # fmt: skip
    assert final is not None
    verdicts = kernel.verdict(final)
    verdicts = np.where(early != "", early, verdicts)
    stopped = early != ""
    return DimensionResult(
        name, verdicts, early, final.drop_fails & ~stopped, final.rise_fails & ~stopped | early_rise, true_drop,
        policy.margin, policy.alpha, policy.rise_alpha, churn, sizes, flips_seen,
    )  # fmt: skip


def _fewest_keys(
    models: Sequence[ScenarioModel], draws: Sequence[np.ndarray], look: Mapping[str, int]
) -> np.ndarray | None:
    """The fewest distinct sample keys any keyed scenario holds at this look, per replicate."""
    counts = []
    for model, drawn in zip(models, draws, strict=True):
        if model.per_key > 1:
            seen = drawn[:, : look[model.pool.scenario]]
            counts.append(np.array([np.unique(row).size for row in seen]))
    return np.min(counts, axis=0) if counts else None


def simulate(
    dimensions: Mapping[str, Sequence[ScenarioModel]],
    thresholds: Thresholds,
    condition: Condition,
    replicates: int,
    seed: int = 0,
) -> dict[str, DimensionResult]:
    return {
        name: simulate_dimension(models, thresholds, condition, replicates, seed + 1000 * i)
        for i, (name, models) in enumerate(dimensions.items())
    }
