"""Early stopping: a check runs in looks over growing prefixes of its items and stops when the
answer is clear, with the scenario checks judged on the same items as their dimension."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trustgate.gate.compare as compare_module
from tests.synthetic import FakeEvaluator, handle, make_dimension, make_items, make_run
from trustgate.dimensions.base import Item
from trustgate.evaluation.evaluator import select_items
from trustgate.gate import kernel
from trustgate.gate.check import GateCheck, interim_decision, with_levels
from trustgate.gate.compare import OVERALL, compare
from trustgate.gate.kernel import Levels
from trustgate.gate.policy import Thresholds

N = 40  # items per scenario; two scenarios
DIMENSION = make_dimension("stereotype", scenarios=("a", "b"), n=N)
ALL_RIGHT = [1.0] * N
# Item scores per model and scenario. "wrecked" loses every item (the score, not the refusal
# rate: its wrong answers are not refusals here); "borderline" loses half of 3 items in 40 in
# each scenario, one in each look.
BORDERLINE = [0.5 if index in (0, 13, 26) else 1.0 for index in range(N)]
BEHAVIOUR = {
    "dense": {"a": ALL_RIGHT, "b": ALL_RIGHT},
    "same": {"a": ALL_RIGHT, "b": ALL_RIGHT},
    "wrecked": {"a": [0.5] * N, "b": [0.5] * N},
    "borderline": {"a": BORDERLINE, "b": BORDERLINE},
    # Dense half-scores every item of the first look (answered, never better), then scores fully;
    # this variant is better than dense on half of the first look and half as good after it.
    "dense_floor": {"a": [0.5] * 10 + [1.0] * 30, "b": [0.5] * 10 + [1.0] * 30},
    "lucky_start": {"a": [1.0, 0.5] * 5 + [0.5] * 30, "b": [1.0, 0.5] * 5 + [0.5] * 30},
}


class CountingEvaluator(FakeEvaluator):
    """Serves BEHAVIOUR's runs on prefixes of the items and counts the items each model generated."""

    def __init__(self) -> None:
        self.generated: dict[str, int] = {}
        self._seen: set[tuple[str, str, str, int]] = set()

    def run(self, dimension, scenario, model, keys=None):
        scores = BEHAVIOUR[model.name][scenario][:keys]
        for index in range(len(scores)):  # the generation cache: an item is generated once
            if (model.name, dimension.name, scenario, index) not in self._seen:
                self._seen.add((model.name, dimension.name, scenario, index))
                self.generated[model.name] = self.generated.get(model.name, 0) + 1
        return make_run(dimension, scenario, model.name, scores)


def gate(selected=None, **gate_keys) -> tuple[GateCheck, CountingEvaluator]:
    raw = {
        "gate": {"margin": 5.0, "max_refusal_rise": 100.0, "bootstrap_resamples": 1000,
                 "looks": [0.25, 0.5, 1.0], "min_look_items": 10, **gate_keys},
        "profiles": {},
    }  # fmt: skip
    evaluator = CountingEvaluator()
    check = GateCheck(
        evaluator=evaluator,
        thresholds=Thresholds.model_validate(raw),
        base_model=handle("dense"),
        variant_model=handle,
        seed_groups={},
        selected=selected,
    )
    return check, evaluator


def test_a_wrecked_variant_fails_at_the_first_look():
    check, evaluator = gate()
    overall = check.check(DIMENSION, OVERALL, "wrecked").comparison
    assert overall.verdict == "FAIL" and overall.n_items == 20  # 10 of 40 keys in each scenario
    assert overall.stopped.startswith("stopped early at look 1 of 3 (20 of 80 items): FAIL clear")
    assert evaluator.generated == {"dense": 20, "wrecked": 20}


def test_a_variant_identical_to_dense_is_not_passed_early_on_a_few_dozen_items():
    # nothing changed on 20 or 40 items: silence is not precision (the jackknife's standard error is
    # floored at one unit's full change), so the run goes on and passes on every item
    check, evaluator = gate()
    overall = check.check(DIMENSION, OVERALL, "same").comparison
    assert overall.verdict == "PASS" and overall.stopped is None
    assert evaluator.generated["same"] == 2 * N


def test_a_look_too_imprecise_for_a_verdict_never_passes_early():
    # On look 1 no item's drop is above 0, so neither is any resample's, and the interval's upper
    # end sits below the margin (3, as utility's); but at 20 items the rule would catch only a
    # drop of about 8 points, more than twice the margin: not a PASS. The full data fail.
    check, _ = gate(margin=3.0)
    check.base_model = handle("dense_floor")
    look = {"a": 10, "b": 10}
    dense = check.runs(DIMENSION, ["a", "b"], handle("dense_floor"), look)
    lucky = check.runs(DIMENSION, ["a", "b"], handle("lucky_start"), look)
    policy = with_levels(check.thresholds.policy(DIMENSION.name, judged_alone=True), Levels(0.0025, 0.0025))
    decision, first = interim_decision(DIMENSION, OVERALL, dense, lucky, policy)
    assert first.drop <= 0 and decision == ""
    overall = check.check(DIMENSION, OVERALL, "lucky_start").comparison
    assert overall.verdict == "FAIL"


def test_an_unclear_variant_runs_every_look_and_is_judged_as_without_looks():
    check, evaluator = gate()
    overall = check.check(DIMENSION, OVERALL, "borderline").comparison
    assert overall.stopped is None and overall.n_items == 2 * N
    without_looks, _ = gate(looks=[1.0])
    alone = without_looks.check(DIMENSION, OVERALL, "borderline").comparison
    # the same items and estimate; the last look's level is the check's alpha less what the
    # interim looks spent (O'Brien-Fleming: almost nothing), so the verdict is the same
    assert (alone.verdict, alone.drop, alone.n_items) == (overall.verdict, overall.drop, overall.n_items)
    assert alone.drop_interval.confidence < overall.drop_interval.confidence < alone.drop_interval.confidence + 1e-3
    assert evaluator.generated == {"dense": 2 * N, "borderline": 2 * N}


def test_scenario_checks_are_judged_on_the_items_their_dimension_stopped_at():
    check, evaluator = gate()
    scenario = check.check(DIMENSION, "a", "wrecked").comparison
    assert scenario.n_items == 10 and scenario.stopped and scenario.tier == "informational"
    assert scenario.passed  # informational: the overall check carries the verdict
    assert check.check(DIMENSION, OVERALL, "wrecked").comparison.n_items == 20
    assert evaluator.generated == {"dense": 20, "wrecked": 20}  # one sequential run for both


def test_a_scenario_selected_alone_is_judged_alone_and_blocks():
    check, evaluator = gate(selected={"stereotype": frozenset({"a"})})
    scenario = check.check(DIMENSION, "a", "wrecked").comparison
    assert scenario.tier == "blocking" and scenario.verdict == "FAIL"
    assert evaluator.generated == {"dense": 10, "wrecked": 10}  # the first look of a alone; b never runs


def test_interim_looks_too_small_to_judge_are_skipped():
    check, _ = gate(min_look_items=25)  # the looks of 10 and 20 items per scenario are skipped
    overall = check.check(DIMENSION, OVERALL, "wrecked").comparison
    assert overall.stopped is None and overall.n_items == 2 * N


def test_scenario_checks_block_when_the_policy_says_so():
    check, _ = gate(scenario_checks="blocking")
    assert not check.check(DIMENSION, "a", "wrecked").comparison.passed


def test_interim_looks_skip_the_score_interval_bootstraps(monkeypatch):
    calls = []
    original = compare_module.bootstrap_interval
    monkeypatch.setattr(compare_module, "bootstrap_interval", lambda *a, **k: calls.append(1) or original(*a, **k))
    check, _ = gate()
    assert check.stop(DIMENSION, "borderline").note is None  # both interim looks ran, neither was clear
    assert calls == []
    check.check(DIMENSION, OVERALL, "borderline")  # the verdict at the last look reports both score intervals
    assert len(calls) == 2


@pytest.mark.parametrize("model", ["same", "wrecked", "borderline"])
def test_an_interim_look_decides_as_the_sequential_run_does(model):
    check, _ = gate()
    stop = check.stop(DIMENSION, model)
    policy = check.thresholds.policy(DIMENSION.name, None, judged_alone=True)
    spent = kernel.look_levels(policy.levels, [0.25, 0.5, 1.0])
    expected = {"a": N, "b": N}  # no look clear: the last look, every item
    for keys, levels in zip((10, 20), spent, strict=False):
        look = {"a": keys, "b": keys}
        dense = check.runs(DIMENSION, ["a", "b"], handle("dense"), look)
        compressed = check.runs(DIMENSION, ["a", "b"], handle(model), look)
        full = compare(DIMENSION, OVERALL, dense, compressed, with_levels(policy, levels))
        decision, light = interim_decision(DIMENSION, OVERALL, dense, compressed, with_levels(policy, levels))
        intervals = {"dense_interval": full.dense_interval, "variant_interval": full.variant_interval}
        assert dataclasses.replace(light, **intervals) == full  # only the score intervals are left out
        if decision:
            expected = look
            break
    assert stop.look == expected


@st.composite
def items_with_shared_keys(draw) -> tuple[Item, ...]:
    keys = draw(st.lists(st.integers(0, 30), min_size=1, max_size=60))
    return tuple(Item(id=f"i{i}", messages=(("user", "q"),), sample_key=f"k{k}") for i, k in enumerate(keys))


@given(items_with_shared_keys(), st.integers(1, 40), st.integers(1, 40))
def test_a_smaller_look_is_a_prefix_of_a_larger_one(items, small, large):
    small, large = min(small, large), max(small, large)
    assert select_items(select_items(items, large), small) == select_items(items, small)
    assert {i.id for i in select_items(items, small)} <= {i.id for i in select_items(items, large)}


def test_the_selection_keeps_the_items_of_a_key_together():
    items = make_items("a", 6)
    assert select_items(items, 3) == select_items(items, 3)  # deterministic
    assert len(select_items(items, 3)) == 3


class PreparingEvaluator(CountingEvaluator):
    """Records what the gate asks to generate ahead (`prepare`): scenarios and look per model."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[tuple[str, tuple[str, ...], dict | None]] = []

    def prepare(self, dimension, scenarios, model, keys=None):
        self.prepared.append((model.name, tuple(scenarios), keys))


def test_a_scenarios_own_check_prepares_every_scenario_the_dimension_checks_at_the_same_look():
    # A scenario's test runs before the overall one: its runs ask for the dimension's whole scope,
    # so the engine gets all of them at once and the later checks read the cache.
    check, _ = gate(looks=[1.0])
    evaluator = PreparingEvaluator()
    check.evaluator = evaluator
    check.check(DIMENSION, "a", "wrecked")
    assert {(model, scenarios) for model, scenarios, _ in evaluator.prepared} == {
        ("dense", ("a", "b")),
        ("wrecked", ("a", "b")),
    }
    selected, _ = gate(looks=[1.0], selected={"stereotype": frozenset({"a"})})
    selected.evaluator = evaluator
    evaluator.prepared.clear()
    selected.check(DIMENSION, "a", "wrecked")  # only "a" selected: only "a" is prepared
    assert {scenarios for _, scenarios, _ in evaluator.prepared} == {("a",)}
