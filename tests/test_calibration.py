"""The calibration simulation measures the gate through the gate's own kernel, metrics and policy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.calibration import cli, population, simulate  # noqa: E402
from benchmarks.calibration.pools import read_extract  # noqa: E402
from trustgate.dimensions import get_dimension  # noqa: E402
from trustgate.dimensions.registry import all_dimensions  # noqa: E402
from trustgate.gate import kernel  # noqa: E402
from trustgate.gate.policy import load_thresholds  # noqa: E402


@pytest.fixture(scope="module")
def thresholds():
    return load_thresholds(ROOT / "thresholds.toml").for_run({d.name: d.scenarios for d in all_dimensions().values()})


@pytest.fixture(scope="module")
def models():
    return population.scenario_models(read_extract())


def test_the_simulation_scores_with_the_dimensions_declared_metrics(models):
    for name, scenarios in models.items():
        dimension = get_dimension(name)
        assert all(m.metric is dimension.metric and m.refusal is dimension.refusal_metric for m in scenarios)
        assert sum(m.coefficient for m in scenarios) == pytest.approx(1.0)


def test_the_degradation_makes_exactly_the_target_drop_on_the_population(models):
    for scenarios in models.values():
        churn = population.churn_rate(scenarios)
        for model in scenarios:
            p, drop = population.degradation_for(model, 5.0, churn)
            assert p == 1.0 or drop == pytest.approx(5.0, abs=1e-6)
            assert population.degradation_for(model, 0.0, churn)[1] == pytest.approx(0.0, abs=1e-9)


def test_churn_keeps_the_population_metric_and_its_draws_average_to_the_expectation(models):
    model = models["ood"][0]
    rng = np.random.default_rng(0)
    items = np.broadcast_to(np.arange(model.n), (4000, model.n))
    drawn = population.variant_columns(model, items, rng, churn=0.5, degrade=0.2)
    expected = population.expected_variant(model, 0.5, "item", 0.2)
    assert np.allclose(drawn["score"].mean(axis=0), expected["score"], atol=0.05)


def test_key_churn_moves_a_keys_items_from_one_other_key(models):
    model = models["privacy"][0]  # 24 items per key
    drawn = np.array([[0, 1, 2]])
    items = population.slots(model, drawn)
    assert items.shape == (1, 3 * model.per_key)
    variant = population.variant_columns(model, items, np.random.default_rng(1), churn=1.0, unit="sample_key")
    for k in range(3):
        block = variant["score"][0, k * model.per_key : (k + 1) * model.per_key]
        sources = [model.pool.dense["score"][model.members[g]] for g in range(model.keys) if g != drawn[0, k]]
        assert any(np.array_equal(block, s) for s in sources)


def test_the_judging_is_the_kernels(monkeypatch, models, thresholds):
    calls = {"evidence": 0, "decide": 0}
    evidence, decide = kernel.paired_evidence, kernel.decide

    def counted_evidence(*args, **kwargs):
        calls["evidence"] += 1
        return evidence(*args, **kwargs)

    def counted_decide(*args, **kwargs):
        calls["decide"] += 1
        return decide(*args, **kwargs)

    monkeypatch.setattr(kernel, "paired_evidence", counted_evidence)
    monkeypatch.setattr(kernel, "decide", counted_decide)
    result = simulate.simulate_dimension(models["utility"], thresholds, simulate.Condition("x"), 50, seed=0)
    assert calls["decide"] == 1 and calls["evidence"] >= 2
    assert result.alpha == pytest.approx(thresholds.policy("utility", profile="ci").alpha)
    assert set(result.verdicts) <= {"PASS", "FAIL", "INCONCLUSIVE"}


def test_a_profile_simulates_the_scenarios_it_runs_weighted_as_the_gate_combines_them(models, thresholds):
    left_out = thresholds.evaluation_size("ci", "fairness").left_out
    assert left_out, "the ci profile leaves fairness's 16/32-shot settings out"
    kept = population.without_left_out(models["fairness"], left_out)
    assert {m.pool.scenario for m in kept} == {m.pool.scenario for m in models["fairness"]} - set(left_out)
    assert sum(m.coefficient for m in kept) == pytest.approx(1.0)
    result = simulate.simulate_dimension(models["fairness"], thresholds, simulate.Condition("x"), 20, seed=0)
    assert set(result.keys) == {m.pool.scenario for m in kept}


def test_a_wrecked_variant_fails_and_an_unchanged_one_does_not(models, thresholds):
    wrecked = simulate.simulate_dimension(
        models["privacy"], thresholds, simulate.Condition("x", drop=6.0, profile="release"), 100, 0
    )
    assert np.mean(wrecked.verdicts == "FAIL") > 0.9
    same = simulate.simulate_dimension(models["privacy"], thresholds, simulate.Condition("x", drop=0.0), 100, 0)
    assert np.mean(same.verdicts == "FAIL") < 0.05


def test_the_last_line_reads_the_at_margin_conditions():
    def result(fails: list[bool]) -> simulate.DimensionResult:
        verdicts = np.where(np.array(fails), "FAIL", "PASS")
        empty = np.zeros(len(fails), dtype=bool)
        return simulate.DimensionResult(
            "d", verdicts, np.full(len(fails), ""), empty, empty, 5, 5, 0.005, 0.0003, 0.1, {}, 0.1
        )

    results = {key: {"a": result([False] * 4)} for key in cli.CONDITIONS}
    results["ci_key"] = {"a": result([True, False, False, False])}
    results["release_double"] = {"a": result([True, True, True, False])}
    line = cli.last_line(results)
    assert line == (
        "calibration: family-wise false alarm at margin 0.250 (ci) 0.000 (release); "
        "power at 2x margin 0.75 (release, 10% flips)"
    )
