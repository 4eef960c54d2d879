"""The ci profile's sizes: allocation by detection per second (trustgate/gate/sizing.py) and the
limits in thresholds.toml being that allocation on the committed measurement."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import ci_sizing
from trustgate.gate import kernel, sizing
from trustgate.gate.sizing import allocate, candidate_costs

ALPHA = 0.05 / 9 * 0.95


def _cost(name: str, keys: int, seconds_per_item: float, items_per_key: int = 1, scenarios: int = 2, margin=5.0):
    return candidate_costs(
        name, margin, ALPHA, {f"s{i}": [items_per_key] * keys for i in range(scenarios)},
        {f"s{i}": seconds_per_item for i in range(scenarios)},
    )  # fmt: skip


@given(
    units=st.integers(min_value=5, max_value=3000),
    margin=st.sampled_from([0.0, 3.0, 5.0, 10.0]),
    rate=st.floats(min_value=0.02, max_value=0.5),
)
@settings(max_examples=60, deadline=None)
def test_planning_power_is_eighty_percent_at_the_detectable_drop(units, margin, rate):
    drop = float(kernel.detectable_drop(units, margin, ALPHA, disagreement=rate))
    if math.isnan(drop):
        assert kernel.planning_power(units, 100.0, margin, ALPHA, rate) < 0.8
        return
    assert kernel.planning_power(units, drop, margin, ALPHA, rate) >= 0.8
    assert kernel.planning_power(units, drop - 0.01, margin, ALPHA, rate) < 0.8 or drop - 0.01 <= margin
    assert kernel.planning_power(units, drop, margin, ALPHA, rate) >= kernel.planning_power(
        max(1, units // 2), drop, margin, ALPHA, rate
    )  # more units, more power


def test_floor_is_one_key_per_scenario_or_more_and_ten_items_in_all():
    assert _cost("a", 50, 1.0, scenarios=2).limits[0] == 5  # 2 x 5 = 10 items
    assert _cost("b", 50, 1.0, scenarios=11).limits[0] == 1  # 11 items
    assert _cost("c", 50, 1.0, scenarios=3, items_per_key=24).limits[0] == 1  # 72 items in 3 keys
    assert _cost("d", 3, 1.0, scenarios=1).limits == (3,)  # fewer items than the floor: all of them


def test_a_scenario_whose_items_cost_five_times_the_cheapest_is_left_out():
    cost = candidate_costs("f", 5.0, ALPHA, {"zero": [1] * 40, "shots": [1] * 40, "mid": [1] * 40},
                           {"zero": 0.3, "shots": 16.0, "mid": 1.2})  # fmt: skip
    assert cost.left_out == ("shots",)
    assert cost.limits[0] == 5 and cost.items[0] == 5 + 5  # the floor's ten items, without "shots"
    assert cost.seconds[0] == pytest.approx(5 * 0.3 + 5 * 1.2)
    assert cost.items[-1] == 40 + 40


def test_no_power_is_counted_where_the_kernels_jackknife_cannot_decide():
    # fairness at ci once held its 32-shot settings at one key: the plan claimed power 0.74 while
    # every run's interval was undefined. A size the kernel cannot decide at is worth nothing.
    one_key_held = candidate_costs("f", 5.0, ALPHA, {"zero": [1] * 40, "shots": [1] * 1},
                                   {"zero": 0.3, "shots": 0.3})  # fmt: skip
    assert all(power == 0.0 for power in one_key_held.powers)
    assert all(math.isnan(one_key_held.detectable(i)) for i in range(len(one_key_held.limits)))
    few_keys = _cost("k", 4, 0.1, items_per_key=30)  # 8 keys in all, 240 items
    assert max(few_keys.powers) == 0.0
    assert _cost("m", 40, 0.1).powers[-1] > 0.5


@given(
    keys=st.lists(st.integers(min_value=1, max_value=7), min_size=2, max_size=4),
    per_key=st.integers(min_value=1, max_value=3),
    seed=st.integers(min_value=0, max_value=2**16),
)
@settings(max_examples=60, deadline=None)
def test_the_planning_rule_is_where_the_kernel_decides(keys, per_key, seed):
    """`kernel.jackknife_can_decide` (what the sizing and plan lines count) says yes exactly where
    the kernel's own evidence, on strata of those many sample keys, has a defined interval over
    enough units for a verdict."""
    from trustgate.dimensions.metrics import mean_item_score

    rng = np.random.default_rng(seed)
    strata, offset = [], 0
    for count in keys:
        units = offset + np.repeat(np.arange(count), per_key)
        offset += count
        dense, variant = rng.integers(0, 2, units.size).astype(float), rng.integers(0, 2, units.size).astype(float)
        strata.append(kernel.Stratum(mean_item_score, {"score": dense}, ({"score": variant},), units, 1 / len(keys)))
    evidence = kernel.paired_evidence(strata)
    decides = bool(np.isfinite(evidence.se)) and int(evidence.units) >= kernel.MIN_JACKKNIFE_UNITS
    assert kernel.jackknife_can_decide(keys) == decides
    assert (sizing.planning_df(keys) > 0) == decides


def test_the_budget_goes_where_power_per_second_is_highest():
    cheap = _cost("cheap", 400, 0.1)
    dear = _cost("dear", 400, 5.0)
    hopeless = _cost("hopeless", 400, 0.1, margin=60.0)  # a drop of 120 points: never detectable
    limits = allocate([cheap, dear, hopeless], budget_seconds=400.0)
    spent = sum(c.seconds[c.limits.index(limits[c.name])] for c in (cheap, dear, hopeless))
    assert spent <= 400.0
    assert limits["hopeless"] == hopeless.limits[0]  # no power to buy: it keeps its floor
    assert cheap.powers[cheap.limits.index(limits["cheap"])] > 0.95
    assert limits["dear"] > dear.limits[0]  # what is left goes to the dearer one


@given(budget=st.floats(min_value=0.0, max_value=3000.0), more=st.floats(min_value=0.0, max_value=3000.0))
@settings(max_examples=25, deadline=None)
def test_allocation_keeps_floors_and_budget_and_more_budget_never_buys_less_power(budget, more):
    costs = [_cost("a", 120, 0.4), _cost("b", 60, 2.0, items_per_key=4), _cost("c", 30, 9.0, scenarios=11)]
    floors = sum(c.seconds[0] for c in costs)

    def outcome(limit_budget: float) -> tuple[float, float]:
        limits = allocate(costs, limit_budget)
        index = {c.name: c.limits.index(limits[c.name]) for c in costs}
        assert all(limits[c.name] >= c.limits[0] for c in costs)
        return sum(c.seconds[index[c.name]] for c in costs), sum(c.powers[index[c.name]] for c in costs)

    spent, power = outcome(budget)
    assert spent <= max(budget, floors) + 1e-9
    assert outcome(budget + more)[1] >= power - 0.02  # greedy: near-monotone in the budget


def test_measure_reads_seconds_per_item_from_the_event_log(tmp_path: Path):
    log = tmp_path / "events.jsonl"
    events = [
        {"event": "generate", "model": "dense", "scenario": "toxicity/x", "prompts": 8, "generated": 8, "seconds": 4.0},
        {"event": "generate", "model": "gptq4", "scenario": "toxicity/x", "prompts": 8, "generated": 4, "seconds": 3.0},
        {"event": "generate", "model": "dense", "scenario": "toxicity/x", "prompts": 8, "generated": 0},  # cached
        {"event": "stream", "model": "dense", "prompts": 8},
    ]
    log.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    measured = ci_sizing.measure([log])
    assert measured["seconds_per_item"] == {"toxicity/x": 0.5 + 0.75}
    assert measured["models"] == ["dense", "gptq4"]


def test_measure_refuses_scenarios_generated_together(tmp_path: Path):
    log = tmp_path / "events.jsonl"
    together = {"event": "generate", "model": "dense", "scenario": "toxicity/x+y", "scenarios": ["x", "y"],
                "prompts": 8, "generated": 8, "seconds": 4.0}  # fmt: skip
    log.write_text(json.dumps(together) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="--trust-one-scenario-at-a-time"):
        ci_sizing.measure([log])


def test_the_ci_limits_in_thresholds_toml_are_the_allocation_on_the_committed_measurement():
    thresholds = ci_sizing.load_thresholds(ci_sizing.THRESHOLDS)
    measured = json.loads(ci_sizing.MEASURED.read_text(encoding="utf-8"))
    budget = thresholds.profiles[ci_sizing.PROFILE].budget_seconds
    assert budget is not None, "[profiles.ci] states the budget its sizes were allocated for"
    costs, limits = ci_sizing.sized(thresholds, measured, budget)
    sizes = {c.name: thresholds.evaluation_size(ci_sizing.PROFILE, c.name) for c in costs}
    assert {name: size.limit for name, size in sizes.items()} == limits, "rerun benchmarks/ci_sizing.py --write"
    assert {name: tuple(size.left_out) for name, size in sizes.items()} == {c.name: c.left_out for c in costs}
    assert not any(size.scenario_limits for size in sizes.values())
    text = ci_sizing.THRESHOLDS.read_text(encoding="utf-8")
    table = text[text.index(ci_sizing.BEGIN) : text.index(ci_sizing.END) + len(ci_sizing.END)]
    assert table == "\n".join(ci_sizing.table(costs, limits, budget, measured))


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_a_limit_takes_the_first_keys_in_the_gates_hashed_order(limit):
    from trustgate.data import TrustData
    from trustgate.dimensions import get_dimension
    from trustgate.evaluation.evaluator import keys_in_order, select_items

    items = get_dimension("privacy").load(TrustData("embedded"), "enron").items
    kept = {item.sample_key or item.id for item in select_items(items, limit)}
    assert kept == set(keys_in_order(items)[:limit])


def test_the_plan_lines_state_what_the_sizing_table_states(tmp_path: Path):
    """Before a run, the header's plan line per dimension gives the detectable drop that
    thresholds.toml's sizing table gives (one planning model, the test's own units)."""
    from types import SimpleNamespace

    from trustgate.data import TrustData
    from trustgate.evaluation.profiles import EvaluationSettings
    from trustgate.gate.plan import plan_lines

    thresholds = ci_sizing.load_thresholds(ci_sizing.THRESHOLDS)
    measured = json.loads(ci_sizing.MEASURED.read_text(encoding="utf-8"))
    costs, limits = ci_sizing.sized(thresholds, measured, thresholds.profiles["ci"].budget_seconds)
    evaluation = EvaluationSettings(
        data=TrustData("embedded"), profile_name="ci", profile=thresholds.profiles["ci"],
        cache_root=tmp_path, report_dir=tmp_path,
    )  # fmt: skip
    lines = plan_lines(SimpleNamespace(evaluation=evaluation, thresholds=thresholds))
    for cost in costs:
        index = cost.limits.index(limits[cost.name])
        (line,) = [line for line in lines if line.startswith(f"trustgate plan: {cost.name}:")]
        assert f"{cost.items[index]} items in {cost.units[index]} sample keys" in line
        detectable = cost.detectable(index)
        assert (f"detects {detectable:.1f} points" if detectable == detectable else "cannot detect any drop") in line


@given(units=st.integers(min_value=2, max_value=500), df=st.integers(min_value=1, max_value=400))
@settings(max_examples=40, deadline=None)
def test_few_degrees_of_freedom_buy_less_power_than_the_normal_model(units, df):
    normal = kernel.planning_power(units, 10.0, 5.0, ALPHA)
    assert kernel.planning_power(units, 10.0, 5.0, ALPHA, df=df) <= normal + 1e-12
    assert (
        kernel.planning_power(units, 10.0, 5.0, ALPHA, df=df)
        <= kernel.planning_power(units, 10.0, 5.0, ALPHA, df=df + 50) + 1e-12
    )
    assert kernel.planning_power(units, 10.0, 5.0, ALPHA, df=0) == 0.0  # one unit per stratum: no test
