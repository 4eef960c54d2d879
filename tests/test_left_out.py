"""A scenario the profile leaves out (thresholds.toml `left_out`, the ci profile's 16/32-shot
fairness settings): the dimension's overall check is judged on the other scenarios and says so;
the scenario's own check is skipped, and the run fails closed only where that check was selected
without its dimension's overall one (such a run gated nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synthetic import FAKE_CONFTEST, FAKE_TEST, ROOT, FakeEvaluator, handle, make_dimension, make_run
from trustgate.data import TrustData
from trustgate.evaluation.evaluator import Evaluator
from trustgate.evaluation.profiles import EvaluationSettings
from trustgate.gate.check import GateCheck, LeftOut
from trustgate.gate.compare import OVERALL
from trustgate.gate.policy import Thresholds, load_thresholds

DIMENSION = make_dimension("fairness", scenarios=("a", "b"), n=40)


class LeavingOutB(FakeEvaluator):
    leaves_out = frozenset({"b"})

    def __init__(self) -> None:
        self.ran: set[str] = set()

    def run(self, dimension, scenario, model, keys=None):
        self.ran.add(scenario)
        scores = [1.0] * 40 if model.name == "dense" else [0.0] * 20 + [1.0] * 20
        return make_run(dimension, scenario, model.name, scores[:keys])


def gate(selected=None) -> tuple[GateCheck, LeavingOutB]:
    raw = {"gate": {"margin": 5.0, "max_refusal_rise": 100.0}, "profiles": {}}
    evaluator = LeavingOutB()
    check = GateCheck(evaluator, Thresholds.model_validate(raw), handle("dense"), handle, {}, selected=selected,
                      profile="ci")  # fmt: skip
    return check, evaluator


def test_the_overall_check_is_judged_on_the_other_scenarios_and_says_so():
    check, evaluator = gate()
    overall = check.check(DIMENSION, OVERALL, "gptq4").comparison
    assert overall.verdict == "FAIL" and "of 40 items" in overall.stopped  # scenario a's items only
    assert overall.partial == "left out by the ci profile: b"
    assert "PARTIAL: left out by the ci profile: b" in overall.line()
    assert evaluator.ran == {"a"}  # nothing of b was generated


def test_the_scenarios_own_check_is_not_a_gap_where_the_overall_check_runs():
    check, _ = gate()
    with pytest.raises(LeftOut) as left:
        check.check(DIMENSION, "b", "gptq4")
    assert left.value.required is False
    assert left.value.reason.startswith("left out by the ci profile: ")
    assert "[profiles.ci.dimensions.fairness] left_out" in left.value.reason
    assert "--trust-profile release or --trust-limit N runs it" in left.value.reason


def test_selected_alone_it_is_a_gap():
    check, _ = gate(selected={"fairness": frozenset({"b"})})
    with pytest.raises(LeftOut) as left:
        check.check(DIMENSION, "b", "gptq4")
    assert left.value.required is True


def test_the_trust_limit_option_runs_the_left_out_scenarios(tmp_path: Path):
    thresholds = load_thresholds(ROOT / "thresholds.toml")
    fairness = make_dimension("fairness", scenarios=("adult_32shot_fair_demo", "adult_0shot_test_br0.0"))

    def evaluator(limit: int | None) -> Evaluator:
        settings = EvaluationSettings(
            data=TrustData("embedded"), profile_name="ci", profile=thresholds.profiles["ci"],
            cache_root=tmp_path / str(limit), report_dir=tmp_path, limit=limit,
        )  # fmt: skip
        return Evaluator(settings)

    assert evaluator(None).left_out(fairness, "adult_32shot_fair_demo")
    assert not evaluator(None).left_out(fairness, "adult_0shot_test_br0.0")
    assert not evaluator(4).left_out(fairness, "adult_32shot_fair_demo")


def test_a_left_out_name_that_is_not_a_scenario_is_a_usage_error(tmp_path: Path):
    from trustgate.gate.policy import check_scenario_names
    from trustgate.util.errors import TrustgateError

    raw = {"gate": {"margin": 5.0, "max_refusal_rise": 10.0},
           "profiles": {"ci": {"dimensions": {"fairness": {"left_out": ["adult_32shot"]}}}}}  # fmt: skip
    with pytest.raises(TrustgateError, match=r"profiles\.ci\.dimensions\.fairness\.left_out\.adult_32shot: unknown"):
        check_scenario_names(Thresholds.model_validate(raw), tmp_path / "t.toml", {"fairness": ("adult_0shot",)})


LEAVING_OUT_CONFTEST = (
    FAKE_CONFTEST
    + """

class LeavingOutB(BehaviourEvaluator):
    def left_out(self, dimension, scenario):
        return scenario == "b"


@pytest.fixture(scope="session")
def evaluator():
    return LeavingOutB()
"""
)


def _suite(folder: Path, *args: str) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True)
    (folder / "conftest.py").write_text(LEAVING_OUT_CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (folder / "test_utility.py").write_text(FAKE_TEST.format(name="utility"))
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TRUSTGATE_CACHE": str(folder / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--model", "gptq4", "--trust-report", "report", "-rs", *args],
        cwd=folder, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_through_the_plugin_the_run_stays_green_with_the_overall_check_and_red_without(tmp_path: Path):
    whole = _suite(tmp_path / "whole")
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert "1 skipped" in whole.stdout
    assert "not gated (allowed) utility/b [gptq4]: left out by the ci profile" in whole.stdout
    alone = _suite(tmp_path / "alone", "-k", "b")
    assert alone.returncode == 1, alone.stdout
    assert "NOT GATED utility/b [gptq4]: left out by the ci profile" in alone.stdout
