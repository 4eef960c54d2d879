"""Multiplicity control for a variant's many checks: one-sided bootstrap p-values, Bonferroni, Holm.

A variant is judged on ~50 checks (every scenario and every dimension overall). Under
`drop_proven` a check fails when the data prove that the drop exceeds the margin, i.e. when
H0 "drop <= margin" is rejected at one-sided level alpha. Controlling the family-wise error
(the chance that a variant with no excess drop fails at least one blocking check) needs a
smaller alpha per check (Bonferroni: alpha / m) or a step-down over the checks' p-values (Holm,
never less powerful than Bonferroni). These are pure functions: the gate decides where to use them.

The p-value of a check is read off the same paired bootstrap that gives its interval: the share
of resampled drops at or below the margin, with the usual +1 correction so it is never 0.
A check with `drop_proven` at confidence c (two-sided percentile interval) fails exactly when
its one-sided level (1 - c) / 2 test rejects, up to percentile interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bootstrap_p_value(resampled_drops: np.ndarray, margin: float) -> np.ndarray:
    """One-sided p-value of H0 "drop <= margin" from resampled drops (last axis: resamples).

    p = (1 + #{drop* <= margin}) / (B + 1); non-finite resamples are left out. Small p: the
    resamples lie above the margin, the data prove the drop exceeds it.
    """
    drops = np.asarray(resampled_drops, dtype=float)
    finite = np.isfinite(drops)
    at_or_below = np.sum(finite & (drops <= margin), axis=-1)
    return (1.0 + at_or_below) / (1.0 + np.sum(finite, axis=-1))


def bonferroni_alpha(family_alpha: float, checks: int) -> float:
    """The per-check one-sided level that keeps the family-wise error at most family_alpha."""
    if not 0 < family_alpha < 1:
        raise ValueError(f"family alpha must lie in (0, 1), got {family_alpha}")
    if checks < 1:
        raise ValueError(f"need at least one check, got {checks}")
    return family_alpha / checks


def two_sided_confidence(one_sided_alpha: float) -> float:
    """The `confidence` of the gate's two-sided percentile interval whose lower end is the
    one-sided level-alpha bound (drop_proven fails when that bound lies above the margin)."""
    if not 0 < one_sided_alpha < 0.5:
        raise ValueError(f"one-sided alpha must lie in (0, 0.5), got {one_sided_alpha}")
    return 1.0 - 2.0 * one_sided_alpha


def holm_reject(p_values: Sequence[float] | np.ndarray, family_alpha: float) -> np.ndarray:
    """Holm's step-down: which hypotheses are rejected at family-wise level family_alpha.

    Works on the last axis, so a (replicates, checks) array is judged replicate by replicate.
    Sorted ascending, p_(k) is rejected while p_(j) <= alpha / (m - j) for every j <= k
    (0-based j); the first failure stops the descent. NaN p-values are never rejected and
    count as hypotheses (conservative).
    """
    if not 0 < family_alpha < 1:
        raise ValueError(f"family alpha must lie in (0, 1), got {family_alpha}")
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    if m == 0:
        return np.zeros(p.shape, dtype=bool)
    filled = np.where(np.isnan(p), np.inf, p)
    order = np.argsort(filled, axis=-1, kind="stable")
    ranked = np.take_along_axis(filled, order, axis=-1)
    thresholds = family_alpha / (m - np.arange(m))
    passing = np.cumprod(ranked <= thresholds, axis=-1).astype(bool)
    rejected = np.zeros(p.shape, dtype=bool)
    np.put_along_axis(rejected, order, passing, axis=-1)
    return rejected


def bonferroni_reject(p_values: Sequence[float] | np.ndarray, family_alpha: float) -> np.ndarray:
    """Bonferroni on the last axis: reject p <= family_alpha / m (NaN never rejected)."""
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    if m == 0:
        return np.zeros(p.shape, dtype=bool)
    return np.nan_to_num(p, nan=np.inf) <= bonferroni_alpha(family_alpha, m)
