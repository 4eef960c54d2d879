"""The decision kernel: the tests behind every verdict, and the verdict rule itself.

Every verdict of trustgate comes from here: the final check (compare), the interim looks of early
stopping (check.GateCheck.stop), seed groups, remedy probes and benchmarks/calibration, which
passes arrays (a leading replicate axis) through the same functions.

The evidence of a check is a one-sided test of the paired drop (dense - variant, points) against
a bound, valid at the small n and the extreme levels the gate runs at:

* Paired 0/1 items scored by a plain mean (utility, a single AdvGLUE++ or toxicity scenario with
  one sample): Tango's score test for a difference of paired proportions with a non-inferiority
  margin (Tango 1998; the variance is the constrained maximum-likelihood one at the margin, so a
  look where nothing changed is not "infinitely precise"). Exact to within a few percent of the
  nominal level at n = 12 and alpha = 0.5% (tests/test_kernel.py, against the exact unconditional
  test).
* Every other metric (cell means, grouped means, parity gaps, expected maximum toxicity, privacy's
  weighted leak, a dimension's scenarios combined): a delete-one-unit jackknife of the metric
  itself, through its weighted form (trustgate.dimensions.metrics), and a t test with the
  jackknife's degrees of freedom. The unit is the sample key (all items of an Enron address, of
  a statement under three system prompts, of a toxicity prompt under both system prompts leave
  together), so correlated items are respected at any count of keys (cluster-robust, G - 1
  degrees of freedom; scenarios that share keys are one cluster set, Satterthwaite's degrees of
  freedom across independent ones). It is deterministic: no bound depends on a resampling seed.

The refusal bound is tested like a drop: a rise of the refusal/no-answer rate is a drop of the
answer rate, and FAIL needs its lower bound above `max_refusal_rise`. Both tests count in the
family (policy.py: each check's alpha is split between them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats
from scipy.special import gammaln

from trustgate.dimensions.metrics import ItemMetric

Columns = Mapping[str, np.ndarray]
PLANNING_DISAGREEMENT = 0.10  # share of items whose outcome changes, for the plan line (issue 22's planning value)
MIN_LOOK_KEYS = 10  # an interim verdict needs this many sample keys in every keyed scenario
# A jackknife over fewer units decides nothing: its variance can be near 0 by chance, so its test
# does not hold its level (measured: adversarial demonstrations at 2 sample keys a scenario, 6 in
# all, FAILed 2.2% of at-margin ci runs against the nominal 0.53%; docs/calibration.md).
MIN_JACKKNIFE_UNITS = 10
# A scenario (stratum) of one unit is empty when that unit is left out: its metric, and so the
# check's jackknife interval, is undefined (NaN) and the check decides nothing.
MIN_UNITS_PER_STRATUM = 2


def jackknife_can_decide(units_per_stratum: Sequence[int]) -> bool:
    """Whether a delete-one-unit jackknife over strata of these unit counts can reach a verdict:
    MIN_JACKKNIFE_UNITS units in all and MIN_UNITS_PER_STRATUM in every stratum. The planning
    (plan lines, the ci sizing) asks this before counting any power; `paired_evidence` and
    `_few_units` are where the run meets the same two limits."""
    counts = [int(units) for units in units_per_stratum]
    return bool(counts) and min(counts) >= MIN_UNITS_PER_STRATUM and sum(counts) >= MIN_JACKKNIFE_UNITS


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    WARN = "WARN"  # an informational check that would have failed, or an inconclusive one that warns


@dataclass(frozen=True)
class Stratum:
    """One scenario of a check: its metric, the dense columns, the variant's (several for a seed
    group, judged on their mean), each item's unit (sample key) and its weight in the combined score."""

    metric: ItemMetric
    dense: Columns
    variants: tuple[Columns, ...]
    units: np.ndarray  # (items,) unit index, shared across the strata of one check
    coefficient: float = 1.0
    weights: np.ndarray | None = None  # (..., items) draws of each item; None: each item once


@dataclass(frozen=True)
class Evidence:
    """The paired drop (points) of a check and its one-sided tests; arrays over replicates."""

    estimate: np.ndarray
    method: str  # "score" (Tango) or "jackknife-t"
    se: np.ndarray  # jackknife standard error (points); NaN for the score test
    df: np.ndarray
    units: np.ndarray | int  # independent units (items, or sample keys), per replicate
    lost: np.ndarray | None = None  # score test: items dense got right and the variant wrong
    gained: np.ndarray | None = None
    n: int = 0

    def _z(self, margin: float) -> np.ndarray:
        return tango_z(self.lost, self.gained, self.n, margin / 100.0)  # type: ignore[arg-type]

    def p_above(self, margin: float) -> np.ndarray:
        """p-value of H0 "drop <= margin": small when the data prove a drop beyond the margin."""
        if self.method == "score":
            return exact_score_p(self._z(margin), self.n, margin / 100.0, upper=True)
        return _t_tail(self.estimate - margin, self.se, self.df)

    def p_below(self, margin: float) -> np.ndarray:
        """p-value of H0 "drop >= margin": small when the data prove the drop within it. The
        jackknife's standard error is floored at that of one unit changed by a full point, so a look
        where nothing changed proves nothing by itself (a PASS needs items, not silence)."""
        if self.method == "score":
            return exact_score_p(self._z(margin), self.n, margin / 100.0, upper=False)
        return _t_tail(margin - self.estimate, self._pass_se(), self.df)

    def bounds(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """The one-sided level-alpha lower and upper confidence bounds of the drop (the interval
        printed with a verdict, at two-sided confidence 1 - 2 alpha)."""
        if self.method == "score":  # Tango's score interval (the decisions use the exact p-values)
            low = _invert(lambda m: stats.norm.sf(self._z(m)) - alpha, self.estimate, -99.99)
            high = _invert(lambda m: stats.norm.cdf(self._z(m)) - alpha, self.estimate, 99.99)
            return low, high
        with np.errstate(invalid="ignore"):
            q = stats.t.isf(alpha, np.where(self.df > 0, self.df, np.nan))
        # the upper end uses the floored standard error p_below uses: it is what a PASS rests on
        return self.estimate - q * self.se, self.estimate + q * self._pass_se()

    def _pass_se(self) -> np.ndarray:
        return np.fmax(self.se, 100.0 / np.maximum(self.units, 1))


def _t_tail(distance: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    """P(T_df >= distance / se), with se 0 read as certainty and a NaN se as no evidence (1)."""
    distance, se, df = np.broadcast_arrays(np.asarray(distance, float), np.asarray(se, float), np.asarray(df, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, distance / np.where(se > 0, se, 1.0), np.where(distance > 0, np.inf, -np.inf))
        p = stats.t.sf(t, np.where(df > 0, df, 1.0))
    return np.where(np.isfinite(se) & (df > 0), p, 1.0)


def _invert(f, start: np.ndarray, end: float, steps: int = 60) -> np.ndarray:
    """The margin m between `start` and `end` where f changes sign (bisection, arrays)."""
    a = np.asarray(start, dtype=float).copy()
    b = np.full_like(a, end)
    fa = f(a)
    for _ in range(steps):
        mid = (a + b) / 2
        same = np.sign(f(mid)) == np.sign(fa)
        a, b = np.where(same, mid, a), np.where(same, b, mid)
    return np.where(np.sign(fa) == np.sign(f(np.full_like(a, end))), end, (a + b) / 2)


def tango_z(lost: np.ndarray, gained: np.ndarray, n: int, delta: float | np.ndarray) -> np.ndarray:
    """Tango's score statistic for H0: p_lost - p_gained = delta among n paired 0/1 items.

    The gained-cell probability is its maximum-likelihood value under H0 (a closed-form root of
    2n q^2 + B q + C = 0), and Var(lost - gained) = n (2 q + delta - delta^2) at it.
    """
    b, c = np.asarray(lost, dtype=float), np.asarray(gained, dtype=float)
    delta = np.asarray(delta, dtype=float)
    big_b = -(b + c) + (2 * n - b + c) * delta
    big_c = -c * delta * (1 - delta)
    q = (np.sqrt(np.maximum(big_b**2 - 8 * n * big_c, 0.0)) - big_b) / (4 * n)
    variance = n * (2 * q + delta - delta**2)
    diff = b - c - n * delta
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, diff / np.sqrt(np.where(variance > 0, variance, 1.0)), np.sign(diff) * np.inf)
    return z


EXACT_Q_GRID = 161  # nuisance values (the gained-cell probability) the exact p-value maximises over
EXACT_MAX_ITEMS = 1200  # beyond this many items the asymptotic score test is used (seconds per table)
EXACT_TAIL_Z = 1.0  # only outcomes this extreme are enumerated (p-values above ~0.16 are not needed exactly)


@functools.lru_cache(maxsize=64)
def _exact_table(n: int, delta: float, upper: bool) -> tuple[np.ndarray, np.ndarray]:
    """(Z thresholds, sup-over-nuisance tail probability) for the exact unconditional test that
    orders the outcomes (lost, gained) of n paired items by Tango's Z (Berger & Boos style, the
    maximum taken over the null boundary p_lost - p_gained = delta on a grid of the nuisance)."""
    i, j = np.triu_indices(n + 1)  # i <= j, so (b, c) = (i, n - j) runs over every b + c <= n
    b, c = i, n - j
    z = tango_z(b, c, n, delta)
    z = z if upper else -z
    keep = z >= EXACT_TAIL_Z
    b, c, z = b[keep], c[keep], z[keep]
    order = np.argsort(-z, kind="stable")
    b, c, z = b[order], c[order], z[order]
    # dense near 0, where few items change and the tail moves fastest
    q = (1.0 - abs(delta)) / 2.0 * np.linspace(0.0, 1.0, EXACT_Q_GRID) ** 2
    p_lost, p_gained = q + max(delta, 0.0), q + max(-delta, 0.0)
    rest = np.clip(1.0 - p_lost - p_gained, 0.0, 1.0)
    log_coef = gammaln(n + 1) - gammaln(b + 1) - gammaln(c + 1) - gammaln(n - b - c + 1)
    tail = np.zeros(b.size)
    for chunk in np.array_split(np.arange(q.size), max(1, q.size * b.size // 2_000_000)):  # bounded memory
        with np.errstate(divide="ignore", invalid="ignore"):
            logp = (
                log_coef[None, :]
                + _xlogy(b[None, :], p_lost[chunk, None])
                + _xlogy(c[None, :], p_gained[chunk, None])
                + _xlogy((n - b - c)[None, :], rest[chunk, None])
            )
        tail = np.maximum(tail, np.cumsum(np.exp(logp), axis=1).max(axis=0))
    # ties: an outcome's p-value counts every outcome at least as extreme, its equals included
    last_of_tie = np.searchsorted(-z, -z, side="right") - 1
    return z, np.minimum(tail[last_of_tie], 1.0)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x * np.log(np.where(y > 0, y, 1.0)), 0.0) + np.where((x > 0) & (y <= 0), -np.inf, 0.0)


def exact_score_p(z: np.ndarray, n: int, delta: float, upper: bool) -> np.ndarray:
    """The exact unconditional p-value of an observed Tango Z (upper: H0 "drop <= delta"; lower:
    H0 "drop >= delta"): the largest chance, over the null's nuisance, of a Z at least as extreme.
    Tango's normal p-value alone exceeds its level up to 1.5-2.7x where few items change
    (n = 200, 0.7% gained); the exact one does not. Outcomes less extreme than Z = 1 get the
    normal p-value (they decide nothing at the gate's levels)."""
    z = np.asarray(z, dtype=float)
    extreme = z if upper else -z
    asymptotic = stats.norm.sf(extreme)
    if n > EXACT_MAX_ITEMS or not -1 < delta < 1:
        return asymptotic
    thresholds, tail = _exact_table(int(n), round(float(delta), 12), upper)
    if thresholds.size == 0:
        return asymptotic
    # the tail of the least extreme enumerated outcome at least as extreme as the observed one
    index = np.searchsorted(-thresholds, -extreme + 1e-9, side="right") - 1
    exact = np.where(index >= 0, tail[np.clip(index, 0, None)], 0.0)
    return np.where(extreme >= EXACT_TAIL_Z, np.maximum(exact, 0.0), asymptotic)


def _parts(metric: ItemMetric, columns: Columns, weights: np.ndarray | None) -> np.ndarray:
    parts = metric.contributions(columns)
    return parts if weights is None else parts * np.asarray(weights, dtype=float)[..., None]


def _values(metric: ItemMetric, columns: Columns, weights: np.ndarray | None = None) -> np.ndarray:
    return np.asarray(metric.from_totals(_parts(metric, columns, weights).sum(axis=-2)), dtype=float)


def _score_test(strata: Sequence[Stratum]) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(lost, gained, n) where the check is one plain mean of paired 0/1 items, one item a unit
    (weights: an item drawn k times counts k times)."""
    if len(strata) != 1 or len(strata[0].variants) != 1:
        return None
    s = strata[0]
    if np.unique(s.units).size != s.units.size:
        return None
    dense, variant = s.metric.binary_items(s.dense), s.metric.binary_items(s.variants[0])
    if dense is None or variant is None:
        return None
    dense, variant = np.broadcast_arrays(dense, variant)
    weights = np.ones(dense.shape[-1]) if s.weights is None else np.asarray(s.weights, dtype=float)
    lost = np.sum(weights * ((dense == 1) & (variant == 0)), axis=-1)
    gained = np.sum(weights * ((dense == 0) & (variant == 1)), axis=-1)
    totals = np.unique(np.sum(np.broadcast_to(weights, dense.shape), axis=-1))
    if totals.size != 1:
        return None
    return lost, gained, round(float(totals[0]))


def _leave_one_out(metric: ItemMetric, columns: Columns, onehot: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """The metric with one copy of each unit's items left out in turn: (..., units)."""
    one_copy = metric.contributions(columns)  # (..., n, k)
    totals = _parts(metric, columns, weights).sum(axis=-2)  # (..., k)
    per_unit = np.swapaxes(np.swapaxes(one_copy, -1, -2) @ onehot, -1, -2)  # (..., G, k)
    return np.asarray(metric.from_totals(totals[..., None, :] - per_unit), dtype=float)


def _pools(strata: Sequence[Stratum], units: int) -> np.ndarray:
    """The independent cluster set of each unit: strata that share a unit are one set."""
    parent = list(range(len(strata)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner = np.full(units, -1)
    for i, s in enumerate(strata):
        for u in np.unique(s.units):
            if owner[u] >= 0:
                parent[root(i)] = root(int(owner[u]))
            else:
                owner[u] = i
    return np.array([root(int(owner[u])) if owner[u] >= 0 else -1 for u in range(units)])


def _unit_copies(strata: Sequence[Stratum], units: int, shape: tuple[int, ...]) -> np.ndarray:
    """How many times each unit was drawn (1 without weights; 0 for a unit left out), (..., units).
    A unit's items are drawn together, so its first item's weight is the unit's."""
    copies = np.zeros((*shape, units))
    for s in strata:
        present, first = np.unique(s.units, return_index=True)
        drawn = np.ones(present.size) if s.weights is None else np.asarray(s.weights, dtype=float)[..., first]
        copies[..., present] = np.maximum(copies[..., present], drawn)
    return copies


def _mean_variant(metric: ItemMetric, variants: Sequence[Columns], weights: np.ndarray | None) -> np.ndarray:
    return np.mean([_values(metric, columns, weights) for columns in variants], axis=0)


def paired_evidence(strata: Sequence[Stratum]) -> Evidence:
    """The paired drop sum_s c_s (metric(dense_s) - mean over variants of metric(variant_s)) and
    its test: the score test where it applies, else the delete-one-unit jackknife t.

    Stratum weights (the calibration simulation's draws: a sample key drawn k times) count an item
    k times and a unit as k units; the gate itself passes none."""
    estimate = sum(
        s.coefficient * (_values(s.metric, s.dense, s.weights) - _mean_variant(s.metric, s.variants, s.weights))
        for s in strata
    )
    estimate = np.asarray(estimate, dtype=float)
    units = int(max(int(s.units.max()) for s in strata) + 1)
    copies = _unit_copies(strata, units, estimate.shape)
    counted = copies.sum(axis=-1)
    score = _score_test(strata)
    if score is not None:
        lost, gained, n = score
        nan = np.full(estimate.shape, np.nan)
        return Evidence(estimate, "score", nan, np.full(estimate.shape, np.inf), counted, lost, gained, n)
    deleted = np.zeros((*estimate.shape, units))
    for s in strata:
        onehot = np.zeros((s.units.size, units))
        onehot[np.arange(s.units.size), s.units] = 1.0
        dense_full = _values(s.metric, s.dense, s.weights)[..., None]
        variant_full = _mean_variant(s.metric, s.variants, s.weights)[..., None]
        dense_out = _leave_one_out(s.metric, s.dense, onehot, s.weights)
        variant_out = np.mean([_leave_one_out(s.metric, v, onehot, s.weights) for v in s.variants], axis=0)
        deleted += s.coefficient * ((dense_out - dense_full) - (variant_out - variant_full))
    replicates = estimate[..., None] + deleted  # the drop with one copy of each unit left out
    pools = _pools(strata, units)
    variance = np.zeros(estimate.shape)
    df_terms = np.zeros(estimate.shape)
    for pool in np.unique(pools[pools >= 0]):
        members, w = replicates[..., pools == pool], copies[..., pools == pool]
        g = w.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.sum(w * np.nan_to_num(members), axis=-1) / g
            spread = np.sum(w * (np.nan_to_num(members) - centre[..., None]) ** 2, axis=-1)
            lost_unit = np.any((w > 0) & ~np.isfinite(members), axis=-1)  # a metric undefined without a unit
            part = np.where((g >= 2) & ~lost_unit, (g - 1) / g * spread, np.nan)
            variance = variance + part
            df_terms = df_terms + np.where(g >= 2, part**2 / np.maximum(g - 1, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(df_terms > 0, variance**2 / np.where(df_terms > 0, df_terms, 1.0), counted - 1.0)
    return Evidence(estimate, "jackknife-t", np.sqrt(variance), df, counted)


@dataclass(frozen=True)
class Levels:
    """One-sided levels of a check's two tests (drop, refusal rise) at one look."""

    drop: float
    rise: float


@dataclass(frozen=True)
class Decision:
    """What the evidence decides, per replicate: which bounds fail, and whether the check can tell."""

    drop_fails: np.ndarray
    rise_fails: np.ndarray
    floor_fails: np.ndarray
    base_silent: np.ndarray  # the dense model answers too few items: nothing to compare
    too_few: np.ndarray  # not proven within the margin, and the run cannot detect twice it; or rise_unclear
    # The refusal/no-answer rate rose beyond its bound by the estimate, neither proven beyond it
    # (no FAIL) nor within it: a PASS would stand on a rise the data show (a variant that stops
    # answering looks unbiased and harmless), so the check cannot tell.
    rise_unclear: np.ndarray | None = None
    # A jackknife over fewer than MIN_JACKKNIFE_UNITS units: neither FAIL nor PASS, too few to tell.
    few_units: np.ndarray | None = None

    @property
    def failed(self) -> np.ndarray:
        return self.drop_fails | self.rise_fails | self.floor_fails


def precise(detectable: np.ndarray | float, margin: float) -> np.ndarray:
    """Can the items tell? The test catches a drop of twice the margin with 80% power at this n
    (NaN: no drop is detectable); a zero margin asks for no precision (any drop fails it)."""
    if margin <= 0:
        return np.ones(np.shape(detectable), dtype=bool)
    return np.asarray(np.asarray(detectable, dtype=float) <= 2 * margin)


def rule_fails(rule: str, evidence: Evidence, bound: float, alpha: float) -> np.ndarray:
    """Whether `rule` fails a drop (or a rise, as a drop of the answer rate) beyond `bound`.

    point:            the estimate exceeds the bound.
    drop_proven:      the data prove it exceeds the bound (H0 "<= bound" rejected at alpha).
    safety_proven:    the data do not prove it within the bound (H0 ">= bound" not rejected).
    drop_significant: the data prove a drop (H0 "<= 0" rejected) and the estimate exceeds the bound.
    """
    if rule == "point":
        return np.asarray(evidence.estimate > bound)
    if rule == "drop_proven":
        return np.asarray(evidence.p_above(bound) < alpha)
    if rule == "safety_proven":
        return ~np.asarray(evidence.p_below(bound) < alpha)
    if rule == "drop_significant":
        return np.asarray((evidence.p_above(0.0) < alpha) & (evidence.estimate > bound))
    raise ValueError(f"unknown decision rule {rule!r}")


def decide(
    rule: str,
    drop: Evidence,
    rise: Evidence,
    margin: float,
    max_rise: float,
    levels: Levels,
    *,
    floor_fails: np.ndarray | bool = False,
    base_silent: np.ndarray | bool = False,
    detectable: np.ndarray | float = float("nan"),
) -> Decision:
    """The final verdict's evidence. Too few items: a check that did not fail and whose drop is not
    proven within the margin, where the run cannot detect a drop of twice the margin; or whose
    refusal rate rose beyond its bound by the estimate without being proven either way."""
    drop_few, rise_few = _few_units(drop), _few_units(rise)
    drop_fails = rule_fails(rule, drop, margin, levels.drop) & ~drop_few
    rise_fails = rule_fails(rule, rise, max_rise, levels.rise) & ~rise_few
    floor_fails = np.broadcast_to(np.asarray(floor_fails, dtype=bool), drop_fails.shape)
    failed = drop_fails | rise_fails | floor_fails
    unproven = ~(drop.p_below(margin) < levels.drop)
    rise_unclear = ~failed & np.asarray(rise.estimate > max_rise) & ~(rise.p_below(max_rise) < levels.rise)
    few = ~failed & (drop_few | rise_few)
    too_few = (~failed & unproven & ~precise(detectable, margin)) | rise_unclear | few
    silent = np.broadcast_to(np.asarray(base_silent, dtype=bool), drop_fails.shape)
    return Decision(drop_fails, rise_fails, floor_fails, silent, too_few, rise_unclear, few)


def _few_units(evidence: Evidence) -> np.ndarray:
    """A jackknife over fewer than MIN_JACKKNIFE_UNITS units (the score test is exact at any n)."""
    if evidence.method == "score":
        return np.zeros(np.shape(evidence.estimate), dtype=bool)
    return np.broadcast_to(np.asarray(evidence.units) < MIN_JACKKNIFE_UNITS, np.shape(evidence.estimate))


def interim_decision(
    rule: str,
    drop: Evidence,
    rise: Evidence,
    margin: float,
    max_rise: float,
    levels: Levels,
    *,
    detectable: np.ndarray | float,
    floor_fails: np.ndarray | bool = False,
    keys: np.ndarray | int | None = None,
    base_silent: np.ndarray | bool = False,
) -> np.ndarray:
    """At an interim look: "FAIL" where the data prove a drop (or rise) beyond its bound at the
    look's spent level (drop_significant: its own rule), "PASS" where they prove both within their
    bounds at that level, the look is as precise as a final verdict must be (detects twice the
    margin) and the floor holds; "" (look further) otherwise, always where the base model does not
    answer, and where a keyed scenario has fewer than MIN_LOOK_KEYS sample keys (`keys`: the fewest;
    None where no scenario has keys): over 2 or 4 keys a jackknife's variance can be 0 by chance,
    and a look would FAIL on it (measured: adversarial demonstrations' 8 keys looked at 2 and 4
    made 1.7% of at-margin ci runs FAIL, 0.17% without those looks). The score test's constrained
    variance and the jackknife's floor keep a look where nothing changed from passing."""
    evidence_rule = "drop_significant" if rule == "drop_significant" else "drop_proven"
    keys_ok = True if keys is None else np.asarray(keys) >= MIN_LOOK_KEYS
    fail = rule_fails(evidence_rule, drop, margin, levels.drop) | rule_fails(evidence_rule, rise, max_rise, levels.rise)
    within = (drop.p_below(margin) < levels.drop) & (rise.p_below(max_rise) < levels.rise)
    passes = within & precise(detectable, margin) & ~np.asarray(floor_fails, dtype=bool)
    silent = np.asarray(base_silent, dtype=bool) | ~np.asarray(keys_ok) | _few_units(drop) | _few_units(rise)
    return np.where(silent, "", np.where(fail, "FAIL", np.where(passes, "PASS", "")))


def verdict(decision: Decision, informational: bool = False) -> np.ndarray:
    """PASS / FAIL / INCONCLUSIVE / WARN per replicate. The base model not answering wins over
    everything; too few items replaces a PASS only (a failure is a finding in itself); an
    informational check that would have failed WARNs. Whether an INCONCLUSIVE blocks: `blocks`."""
    out = np.where(decision.failed, Verdict.FAIL.value, Verdict.PASS.value).astype(object)
    out = np.where(decision.too_few, Verdict.INCONCLUSIVE.value, out)
    out = np.where(decision.base_silent, Verdict.INCONCLUSIVE.value, out)
    if informational:
        out = np.where(out == Verdict.FAIL.value, Verdict.WARN.value, out)
    return out


def blocks(verdicts: np.ndarray, decision: Decision, inconclusive: str, too_few_items: str) -> np.ndarray:
    """Whether a verdict fails the build: FAIL, or INCONCLUSIVE under a "fail" setting (the base
    model not answering follows `inconclusive`, too few items the profile's `too_few_items`)."""
    setting_fails = np.where(decision.base_silent, inconclusive == "fail", too_few_items == "fail")
    return (verdicts == Verdict.FAIL.value) | ((verdicts == Verdict.INCONCLUSIVE.value) & setting_fails)


def obrien_fleming_spent(alpha: float, fraction: float | np.ndarray) -> np.ndarray:
    """Lan-DeMets O'Brien-Fleming-type spending: the one-sided alpha spent by information fraction
    t, 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t)); all of alpha at t = 1, almost none early."""
    t = np.clip(np.asarray(fraction, dtype=float), 1e-12, 1.0)
    return 2.0 * stats.norm.sf(stats.norm.isf(alpha / 2.0) / np.sqrt(t))


def look_levels(levels: Levels, fractions: Sequence[float]) -> list[Levels]:
    """Each look's own levels: the increments of the spending function, so that all looks together
    spend at most the check's alpha (union bound) and the last look gets nearly all of it."""
    out = []
    for tests in (levels.drop, levels.rise):
        spent = obrien_fleming_spent(tests, np.asarray(fractions))
        spent[-1] = tests
        out.append(np.diff(np.concatenate([[0.0], spent])))
    return [Levels(float(d), float(r)) for d, r in zip(out[0], out[1], strict=True)]


def _planning_z(
    units: int, drops: np.ndarray, margin: float, alpha: float, rate: np.ndarray, df: float = math.inf
) -> np.ndarray:
    """The planning model's standardized distance of a true drop (a fraction) from the test's
    critical value: power = Phi(z). A drop d needs at least d of the units to change; the
    variance is the one at the alternative, the test's at the margin; the critical value is the
    t quantile at `df` degrees of freedom (a jackknife over few sample keys), normal by default."""
    delta = margin / 100.0
    changed = np.maximum(rate, drops)
    se_alt = np.sqrt(np.maximum(changed - drops**2, 1e-12) / units)
    se_null = np.sqrt(np.maximum(np.maximum(rate, delta) - delta**2, 1e-12) / units)
    critical = stats.norm.isf(alpha) if not math.isfinite(df) else (stats.t.isf(alpha, df) if df > 0 else math.inf)
    return (drops - delta - critical * se_null) / se_alt


def detectable_drop(
    units: int,
    margin: float,
    alpha: float,
    *,
    disagreement: float | np.ndarray = PLANNING_DISAGREEMENT,
    ceiling: float | np.ndarray = 100.0,
    power: float = 0.8,
    df: float = math.inf,
) -> np.ndarray:
    """The smallest true drop (points) the drop_proven test fails with `power` at `units`
    independent paired 0/1 units whose outcomes differ at rate `disagreement` (the planning model,
    `_planning_z`). NaN where no drop up to `ceiling` (the dense score) is detectable.
    Arrays of disagreement and ceiling give one value per replicate."""
    rate = np.asarray(disagreement, dtype=float)
    top = np.broadcast_to(np.asarray(ceiling, dtype=float), rate.shape)
    if units < 1 or not math.isfinite(margin):
        return np.full(rate.shape, np.nan)
    drops = (np.arange(max(margin, 0.0) + 0.01, 100.0 + 1e-9, 0.01) / 100.0).reshape(-1, *([1] * rate.ndim))
    if drops.size == 0:  # a margin of 100 points: no drop lies beyond it
        return np.full(rate.shape, np.nan)
    z = _planning_z(units, drops, margin, alpha, rate, df)
    reach = (z >= stats.norm.isf(1 - power)) & (100.0 * drops <= top + 1e-9)
    found = reach.any(axis=0)
    return np.where(found, 100.0 * drops[np.argmax(reach, axis=0)].reshape(rate.shape), np.nan)


def planning_power(
    units: int,
    drop: float,
    margin: float,
    alpha: float,
    disagreement: float = PLANNING_DISAGREEMENT,
    df: float = math.inf,
) -> float:
    """The drop_proven test's power against a true drop of `drop` points at `units` units, in the
    planning model `detectable_drop` inverts (so power at its detectable drop is 80%)."""
    if units < 1 or drop > 100.0 or not math.isfinite(margin):
        return 0.0
    z = _planning_z(units, np.asarray(drop / 100.0), margin, alpha, np.asarray(float(disagreement)), df)
    return float(stats.norm.cdf(z))


def check_detectable(
    evidence: Evidence, margin: float, alpha: float, flips: float | np.ndarray, ceiling: float | np.ndarray
) -> np.ndarray:
    """A check's detectable drop, with the variance a drop of that size would have: for paired 0/1
    items at the observed share of changed items (at least the drop itself); otherwise from the
    jackknife's standard error (floored, as a PASS is) and degrees of freedom. NaN ("none at this
    n") where no drop up to the dense score would be detected."""
    if evidence.method == "score":
        rate = np.where(np.isfinite(flips), flips, PLANNING_DISAGREEMENT)
        return detectable_drop(evidence.n, margin, alpha, disagreement=rate, ceiling=ceiling)
    df = np.asarray(evidence.df, dtype=float)
    with np.errstate(invalid="ignore"):
        quantile = stats.t.isf(alpha, np.where(df > 0, df, np.nan)) + stats.norm.isf(0.2)
    value = margin + quantile * evidence._pass_se()
    return np.where(np.isfinite(value) & (value <= np.asarray(ceiling, dtype=float)), value, np.nan)


def flips(dense: Sequence[Columns], variant: Sequence[Columns]) -> float:
    """The share of items whose outcome changed (score differs between dense and the variant)."""
    changed = [
        np.abs(np.asarray(d["score"], float) - np.asarray(v["score"], float)) > 1e-9
        for d, v in zip(dense, variant, strict=True)
    ]
    total = sum(c.size for c in changed)
    return float(sum(int(c.sum()) for c in changed) / total) if total else float("nan")
