"""Multiplicity control: the Bonferroni level per check (the family is tested in tests/test_policy.py
and measured in docs/calibration.md)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustgate.gate.multiplicity import bonferroni_alpha


def test_bonferroni_level_and_its_bad_inputs():
    assert bonferroni_alpha(0.05, 9) == pytest.approx(0.05 / 9)
    with pytest.raises(ValueError):
        bonferroni_alpha(0.05, 0)
    with pytest.raises(ValueError):
        bonferroni_alpha(1.5, 3)


@given(checks=st.integers(min_value=1, max_value=60), family=st.floats(min_value=0.001, max_value=0.2))
@settings(max_examples=40, deadline=None)
def test_bonferroni_holds_the_family_wise_error_under_independent_nulls(checks, family):
    rng = np.random.default_rng(checks)
    p = rng.uniform(size=(4000, checks))
    rate = (p <= bonferroni_alpha(family, checks)).any(axis=-1).mean()
    assert rate <= family + 4 * np.sqrt(family * (1 - family) / 4000)
