"""Paired statistics for display and the vocabulary of rules: bootstrap score intervals, McNemar.

No verdict reads anything here: trustgate/gate/kernel.py decides (exact score test, jackknife t).
The score intervals a report shows next to each model's score are percentile bootstraps over
items (or whole sample keys, `resample = "sample_key"`, where a scenario has enough of them),
stratified by scenario; every RNG is a seeded numpy Generator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

Columns = Mapping[str, np.ndarray]
Keys = Mapping[str, Sequence[str]]  # per stratum, the sample key of each item
# A statistic over one model's columns, split by stratum (scenario) -> score in points.
Statistic = Callable[[Mapping[str, Columns]], float]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    confidence: float

    def __str__(self) -> str:
        return f"[{self.low:.2f}, {self.high:.2f}]"

    @property
    def level(self) -> str:
        return confidence_label(self.confidence)


def confidence_label(confidence: float) -> str:
    """The confidence as a percentage that a multiplicity-adjusted level survives: 95%, 98.89%,
    99.94% (a rounded "100%" would claim certainty)."""
    percent, digits = confidence * 100, 4
    while f"{percent:.{digits}g}" == "100" and percent < 100 and digits < 12:
        digits += 1
    return f"{percent:.{digits}g}%"


def _take(columns: Columns, index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[index] for name, values in columns.items()}


Resampler = Callable[[np.random.Generator], dict[str, np.ndarray]]
Resample = Literal["item", "sample_key"]  # what a bootstrap resample draws ([gate] resample)
# A bootstrap over G keys has few distinct resamples and shrinks the variance by (G - 1) / G:
# over 2 keys an interval has 3 possible ends. Below this many keys a scenario's items are
# resampled instead, as without keys.
MIN_KEYS_TO_RESAMPLE = 20


def _resample_indices(sizes: Mapping[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {stratum: rng.integers(0, n, size=n) for stratum, n in sizes.items()}


def resampler(sizes: Mapping[str, int], keys: Keys | None = None) -> Resampler:
    """One bootstrap resample's item indices per stratum: n items drawn with replacement, or
    (with `keys`) as many sample keys as the stratum has, each bringing all its items. Strata
    with the same set of keys share one draw of keys; a stratum with fewer than
    MIN_KEYS_TO_RESAMPLE keys draws items."""
    if keys is None:
        return lambda rng: _resample_indices(sizes, rng)
    shared: dict[tuple[str, ...], list[str]] = {}
    layout: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    by_item: dict[str, int] = {}
    for stratum, n in sizes.items():
        names = np.asarray(keys[stratum], dtype=object)
        if names.size != n:
            raise ValueError(f"stratum {stratum!r}: {names.size} sample keys for {n} items")
        unique, key_of_item = np.unique(names, return_inverse=True)
        if unique.size < MIN_KEYS_TO_RESAMPLE:
            by_item[stratum] = n
            continue
        lengths = np.bincount(key_of_item, minlength=unique.size)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        layout[stratum] = (np.argsort(key_of_item, kind="stable"), starts, lengths)  # items key after key
        shared.setdefault(tuple(unique), []).append(stratum)

    def draw(rng: np.random.Generator) -> dict[str, np.ndarray]:
        picks = _resample_indices(by_item, rng)
        for unique, strata in shared.items():
            chosen = rng.integers(0, len(unique), size=len(unique))
            for stratum in strata:
                by_key, starts, lengths = layout[stratum]
                counts = lengths[chosen]
                first = np.cumsum(counts) - counts  # where each chosen key's items begin in the resample
                offsets = np.arange(int(counts.sum())) + np.repeat(starts[chosen] - first, counts)
                picks[stratum] = by_key[offsets]
        return picks

    return draw


def _percentile_interval(values: np.ndarray, confidence: float) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Interval(float("nan"), float("nan"), confidence)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(low), float(high), confidence)


def bootstrap_interval(
    statistic: Statistic,
    strata: Mapping[str, Columns],
    resamples: int,
    confidence: float,
    seed: int,
    keys: Keys | None = None,
) -> Interval:
    """Percentile interval of one model's score, items (or sample keys) resampled within each stratum."""
    rng = np.random.default_rng(seed)
    draw = resampler({name: len(cols["score"]) for name, cols in strata.items()}, keys)
    values = np.empty(resamples)
    for r in range(resamples):
        picks = draw(rng)
        values[r] = statistic({name: _take(cols, picks[name]) for name, cols in strata.items()})
    return _percentile_interval(values, confidence)


@dataclass(frozen=True)
class Spread:
    """Scores of several calibration seeds of one method: mean, sample standard deviation, range."""

    mean: float
    sd: float
    low: float
    high: float
    n: int


def seed_spread(scores: Sequence[float]) -> Spread:
    values = np.asarray(scores, dtype=float)
    if values.size == 0:
        raise ValueError("no seed scores to summarise")
    sd = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return Spread(float(np.mean(values)), sd, float(np.min(values)), float(np.max(values)), int(values.size))


def mcnemar_exact(dense_correct: Sequence[bool], variant_correct: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 outcomes (1.0 when no item changed)."""
    dense_arr = np.asarray(dense_correct, dtype=bool)
    variant_arr = np.asarray(variant_correct, dtype=bool)
    lost = int(np.sum(dense_arr & ~variant_arr))
    gained = int(np.sum(~dense_arr & variant_arr))
    if lost + gained == 0:
        return 1.0
    from scipy.stats import binomtest  # scipy loads only when a verdict is computed

    return float(binomtest(lost, lost + gained, 0.5).pvalue)


def is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


Rule = Literal["point", "drop_proven", "safety_proven", "drop_significant"]
RULES: tuple[str, ...] = get_args(Rule)
