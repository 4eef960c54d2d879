"""Three verdicts: PASS, FAIL and INCONCLUSIVE; and the drop a run's items can detect."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.synthetic import make_dimension, make_runs
from trustgate.gate.compare import Comparison, compare
from trustgate.gate.policy import Thresholds
from trustgate.gate.stats import Interval, detectable_drop


def policy(**gate):
    raw = {"gate": {"margin": 5.0, "max_refusal_rise": 10.0, "bootstrap_resamples": 500, **gate}, "profiles": {}}
    return Thresholds.model_validate(raw).policy("stereotype")


def check(dense_scores, variant_scores, the_policy=None, **dimension_fields) -> Comparison:
    dimension = dataclasses.replace(make_dimension("stereotype", scenarios=("a",)), **dimension_fields)
    dense = make_runs(dimension, "dense", {"a": dense_scores})
    variant = make_runs(dimension, "variant", {"a": variant_scores})
    return compare(dimension, "a", dense, variant, the_policy or policy())


SILENT = [0.0] * 40  # every response a refusal / no answer (tests.synthetic: score 0 = "I cannot ...")


def test_a_base_model_that_does_not_answer_is_inconclusive_whatever_the_variant_does():
    for variant in (SILENT, [1.0] * 40, [0.0] * 20 + [1.0] * 20):
        verdict = check(SILENT, variant)
        assert verdict.verdict == "INCONCLUSIVE" and not verdict.passed
        assert "the base model does not answer this scenario" in verdict.inconclusive
        assert "INCONCLUSIVE" in verdict.line() and verdict.line().startswith("INCONCLUSIVE stereotype/a")


def test_answering_just_enough_is_judged_as_usual():
    answered = [1.0] * 4 + [0.0] * 36  # 10% scorable answers: the default bound
    assert check(answered, answered).verdict == "PASS"
    assert check([1.0] * 3 + [0.0] * 37, [1.0] * 3 + [0.0] * 37).verdict == "INCONCLUSIVE"


def test_inconclusive_warns_when_the_policy_says_so_and_informational_never_blocks():
    warned = check(SILENT, SILENT, policy(inconclusive="warn"))
    assert warned.verdict == "INCONCLUSIVE" and warned.passed
    informational = check(SILENT, SILENT, policy().model_copy(update={"tier": "informational"}))
    assert informational.passed


def test_where_a_refusal_is_a_scored_answer_a_silent_base_model_is_judged():
    verdict = check(SILENT, SILENT, refusal_is_an_answer=("a",))
    assert verdict.inconclusive is None and verdict.verdict == "PASS"


def test_the_verdict_survives_the_trip_through_json():
    verdict = check(SILENT, SILENT)
    assert Comparison.from_dict({**verdict.as_dict(), "verdict": verdict.verdict}) == verdict


def test_detectable_drop_of_a_95_percent_interval():
    # standard error = width / (2 x 1.96); detectable drop = (1.96 + 0.84) x standard error
    expected = (1.959964 + 0.841621) * 20.0 / (2 * 1.959964)
    assert detectable_drop(Interval(-10.0, 10.0, 0.95)) == pytest.approx(expected, rel=1e-6)
    assert math.isnan(detectable_drop(Interval(float("nan"), float("nan"), 0.95)))


@given(st.floats(0, 50), st.floats(0, 50), st.floats(-20, 20))
def test_detectable_drop_grows_with_the_interval_and_ignores_its_centre(width, more, centre):
    narrow = detectable_drop(Interval(centre - width / 2, centre + width / 2, 0.95))
    wide = detectable_drop(Interval(centre - (width + more) / 2, centre + (width + more) / 2, 0.95))
    assert 0 <= narrow <= wide + 1e-9


def test_more_items_detect_smaller_drops():
    few = check([1.0, 0.0] * 10 + [1.0] * 20, [1.0, 0.0] * 10 + [1.0] * 20)
    many = check(([1.0, 0.0] * 10 + [1.0] * 20) * 10, ([1.0, 0.0] * 10 + [1.0] * 20) * 10)
    assert many.detectable_drop <= few.detectable_drop
