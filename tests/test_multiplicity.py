"""Multiplicity control: bootstrap p-values, Bonferroni and Holm, unit and property tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustgate.gate.multiplicity import (
    bonferroni_alpha,
    bonferroni_reject,
    bootstrap_p_value,
    holm_reject,
    two_sided_confidence,
)

p_lists = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=60)


def test_bootstrap_p_value_counts_resamples_at_or_below_the_margin():
    drops = np.array([1.0, 2.0, 5.0, 6.0, 7.0, np.nan])
    # 3 of 5 finite resamples at or below 5: (1 + 3) / (1 + 5)
    assert bootstrap_p_value(drops, 5.0) == pytest.approx(4 / 6)
    assert bootstrap_p_value(np.full(1999, 9.0), 5.0) == pytest.approx(1 / 2000)


def test_bootstrap_p_value_works_on_the_last_axis():
    drops = np.array([[0.0, 0.0, 10.0], [10.0, 10.0, 10.0]])
    np.testing.assert_allclose(bootstrap_p_value(drops, 5.0), [3 / 4, 1 / 4])


def test_bonferroni_and_confidence():
    assert bonferroni_alpha(0.05, 9) == pytest.approx(0.05 / 9)
    assert two_sided_confidence(0.025) == pytest.approx(0.95)
    assert two_sided_confidence(0.05 / 9) == pytest.approx(1 - 0.1 / 9)
    with pytest.raises(ValueError):
        bonferroni_alpha(0.05, 0)
    with pytest.raises(ValueError):
        two_sided_confidence(0.6)


def test_holm_steps_down_and_stops_at_the_first_failure():
    # m = 4: thresholds 0.0125, 0.0167, 0.025, 0.05 for the sorted p-values
    p = [0.01, 0.04, 0.012, 0.03]
    np.testing.assert_array_equal(holm_reject(p, 0.05), [True, False, True, False])
    # the smallest fails its threshold: nothing is rejected, however small the rest
    np.testing.assert_array_equal(holm_reject([0.02, 0.001], 0.01), [False, True])
    np.testing.assert_array_equal(holm_reject([0.02, 0.03], 0.01), [False, False])
    assert holm_reject(np.zeros((3, 0)), 0.05).shape == (3, 0)


def test_holm_treats_nan_as_never_rejected():
    np.testing.assert_array_equal(holm_reject([np.nan, 0.001], 0.05), [False, True])


@given(p_lists, st.floats(min_value=0.001, max_value=0.2))
@settings(max_examples=200, deadline=None)
def test_holm_lies_between_bonferroni_and_unadjusted(p, alpha):
    holm = holm_reject(p, alpha)
    bonferroni = bonferroni_reject(p, alpha)
    unadjusted = np.asarray(p) <= alpha
    assert np.all(bonferroni <= holm)  # Holm rejects whatever Bonferroni does
    assert np.all(holm <= unadjusted)  # and nothing an unadjusted test would keep


@given(p_lists, st.floats(min_value=0.001, max_value=0.2))
@settings(max_examples=200, deadline=None)
def test_holm_is_monotone_in_the_p_values(p, alpha):
    holm = holm_reject(p, alpha)
    arr = np.asarray(p)
    for i in np.flatnonzero(holm):  # a rejected p-value: every smaller one is rejected too
        assert np.all(holm[arr < arr[i]])


@given(st.lists(p_lists, min_size=1, max_size=5).map(lambda rows: [r[: min(map(len, rows))] for r in rows]))
@settings(max_examples=100, deadline=None)
def test_holm_judges_each_row_on_its_own(rows):
    matrix = np.array(rows)
    together = holm_reject(matrix, 0.05)
    for i, row in enumerate(matrix):
        np.testing.assert_array_equal(together[i], holm_reject(row, 0.05))


def test_holm_controls_the_family_wise_error_under_the_null():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(20000, 49))  # 49 true nulls
    family = holm_reject(p, 0.05).any(axis=-1).mean()
    assert family <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 20000)
