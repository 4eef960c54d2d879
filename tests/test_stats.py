"""Display statistics: bootstrap score intervals, McNemar, seed spread; seeded and never rounded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustgate.dimensions.metrics import mean_item_score
from trustgate.gate import kernel
from trustgate.gate.stats import (
    MIN_KEYS_TO_RESAMPLE,
    bootstrap_interval,
    confidence_label,
    mcnemar_exact,
    resampler,
    seed_spread,
)


def mean_score(strata):
    return float(np.mean([100 * np.mean(c["score"]) for c in strata.values()]))


def strata(scores):
    return {"s": {"score": np.asarray(scores, dtype=float)}}


def test_bootstrap_is_seeded_and_contains_the_estimate():
    rng = np.random.default_rng(1)
    data = strata(rng.integers(0, 2, size=200))
    first = bootstrap_interval(mean_score, data, resamples=500, confidence=0.95, seed=7)
    again = bootstrap_interval(mean_score, data, resamples=500, confidence=0.95, seed=7)
    other = bootstrap_interval(mean_score, data, resamples=500, confidence=0.95, seed=8)
    assert first == again
    assert first != other
    assert first.low <= mean_score(data) <= first.high


def test_bootstrap_width_matches_the_binomial_standard_error():
    # 400 items at 50%: standard error 2.5 points, so a 95% interval is about 9.8 points wide.
    data = strata([1, 0] * 200)
    interval = bootstrap_interval(mean_score, data, resamples=2000, confidence=0.95, seed=0)
    assert 8.0 < interval.high - interval.low < 11.5


def test_paired_evidence_is_narrower_than_comparing_two_independent_intervals():
    # The variant agrees with dense on 190 of 200 items and loses 10: a 5-point drop.
    rng = np.random.default_rng(3)
    dense = rng.integers(0, 2, size=200).astype(float)
    variant = dense.copy()
    variant[np.flatnonzero(dense == 1)[:10]] = 0
    args = {"resamples": 2000, "confidence": 0.95, "seed": 0}
    stratum = kernel.Stratum(mean_item_score, {"score": dense}, ({"score": variant},), np.arange(200))
    low, high = kernel.paired_evidence([stratum]).bounds(0.025)
    dense_ci = bootstrap_interval(mean_score, strata(dense), **args)
    variant_ci = bootstrap_interval(mean_score, strata(variant), **args)
    assert low > 0, "ten lost items and none gained is a proven drop when paired"
    assert high - low < 0.5 * ((dense_ci.high - dense_ci.low) + (variant_ci.high - variant_ci.low))
    assert dense_ci.low < variant_ci.high, "unpaired, the two intervals overlap and prove nothing"


def test_mcnemar_exact_values():
    lost_all = mcnemar_exact([True] * 10, [False] * 10)
    assert lost_all == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact([True, False, True], [True, False, True]) == 1.0
    # Symmetric: losing 3 and gaining 1 is as significant as the reverse.
    dense = [True, True, True, False, True]
    variant = [False, False, False, True, True]
    assert mcnemar_exact(dense, variant) == pytest.approx(mcnemar_exact(variant, dense))
    assert mcnemar_exact(dense, variant) == pytest.approx(0.625)


def test_seed_spread():
    spread = seed_spread([43.7, 33.1, 65.6])  # the paper's SparseGPT 2:4 ethics seeds
    assert spread.mean == pytest.approx(47.4667, abs=1e-3)
    assert spread.sd == pytest.approx(16.58, abs=0.01)
    assert (spread.low, spread.high, spread.n) == (33.1, 65.6, 3)
    assert seed_spread([50.0]).sd == 0.0
    with pytest.raises(ValueError):
        seed_spread([])


@given(st.floats(min_value=0.5, max_value=0.99999))
def test_a_confidence_below_one_is_never_labelled_100_percent(confidence: float) -> None:
    label = confidence_label(confidence)
    assert label != "100%" and label.endswith("%")
    assert abs(float(label[:-1]) - confidence * 100) <= 0.005


def test_multiplicity_adjusted_levels_keep_their_digits() -> None:
    assert [confidence_label(c) for c in (0.95, 1 - 0.1 / 9, 1 - 0.01 / 18)] == ["95%", "98.89%", "99.94%"]


def _keyed(items_per_key: list[int], shift: int = 0) -> list[str]:
    return [f"k{key + shift}" for key, count in enumerate(items_per_key) for _ in range(count)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=MIN_KEYS_TO_RESAMPLE, max_size=30),
    st.lists(st.integers(1, 4), min_size=MIN_KEYS_TO_RESAMPLE, max_size=30),
    st.integers(0, 2**16),
)
def test_key_resampling_draws_whole_keys_and_strata_with_the_same_keys_together(first, second, seed):
    keys = {"a": _keyed(first), "b": _keyed(second, shift=5), "c": list(reversed(_keyed(first)))}
    sizes = {name: len(names) for name, names in keys.items()}
    draw = resampler(sizes, keys)(np.random.default_rng(seed))
    for stratum, picks in draw.items():
        names = keys[stratum]
        drawn = [names[i] for i in picks]
        per_key = {k: names.count(k) for k in set(names)}
        # every drawn key brings all its items, as often as it was drawn
        assert all(drawn.count(k) % per_key[k] == 0 for k in set(drawn))
        assert sum(drawn.count(k) // per_key[k] for k in set(drawn)) == len(per_key)
    times = {s: {k: [keys[s][i] for i in draw[s]].count(k) // keys[s].count(k) for k in set(keys[s])} for s in keys}
    assert times["a"] == times["c"], "the same keys in two scenarios: one draw of keys for both"


def test_key_bootstrap_widens_the_score_interval_when_a_keys_items_move_together():
    # 24 keys of 12 items; 9 keys answer nothing: a 62.5% score carried by 24 independent units,
    # not by 288 independent items.
    scores = np.ones(288)
    scores[:108] = 0
    keys = {"s": [f"key-{i // 12}" for i in range(288)]}
    args = {"resamples": 2000, "confidence": 0.95, "seed": 0}
    by_item = bootstrap_interval(mean_score, strata(scores), **args)
    by_key = bootstrap_interval(mean_score, strata(scores), **args, keys=keys)
    assert by_key.high - by_key.low > 2.5 * (by_item.high - by_item.low)  # sqrt(design effect 12) ~ 3.5
    one_item_a_key = {"s": [f"item-{i}" for i in range(288)]}
    same = bootstrap_interval(mean_score, strata(scores), **args, keys=one_item_a_key)
    assert abs((same.high - same.low) - (by_item.high - by_item.low)) < 2.0, "one item a key: an item bootstrap"


def test_a_scenario_with_too_few_keys_resamples_items():
    # 8 keys: a bootstrap over them would have a handful of distinct resamples; items it is.
    scores = np.r_[np.zeros(36), np.ones(60)]
    keys = {"s": [f"key-{i // 12}" for i in range(96)]}
    args = {"resamples": 500, "confidence": 0.95, "seed": 0}
    assert bootstrap_interval(mean_score, strata(scores), **args, keys=keys) == (
        bootstrap_interval(mean_score, strata(scores), **args)
    )


def test_key_resampling_refuses_keys_that_do_not_match_the_items():
    with pytest.raises(ValueError, match="2 sample keys for 3 items"):
        resampler({"s": 3}, {"s": ["a", "b"]})
