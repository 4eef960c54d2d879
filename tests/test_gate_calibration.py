"""The gate-calibration simulation: faithful metrics, known true drops, calibrated rules."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import gate_calibration as gc
from trustgate.dimensions import get_dimension
from trustgate.gate.policy import load_thresholds

THRESHOLDS = load_thresholds(gc.REPO_ROOT / "thresholds.toml")


def binary_pool(dimension: str, scenario: str, n: int, p: float, seed: int = 0, variant_flip: float | None = None):
    rng = np.random.default_rng(seed)
    score = (rng.random(n) < p).astype(float)
    dense = {"score": score, "refusal": (rng.random(n) < 0.05).astype(float)}
    variant = None
    if variant_flip is not None:
        flip = rng.random(n) < variant_flip
        variant = {"score": np.where(flip, 1 - score, score), "refusal": dense["refusal"]}
    return gc.Pool(dimension, scenario, {}, dense, variant, np.arange(n))


def stereotype_pool(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    agree = (rng.random(n) < 0.3).astype(float)
    cells = rng.integers(0, n // 3, size=n).astype(float)
    return gc.Pool(
        "stereotype", "benign", {"cell": cells}, {"score": 1 - agree, "refusal": np.zeros(n), "agree": agree}, None,
        np.arange(n),
    )  # fmt: skip


def fairness_pool(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    sensitive = (rng.random(n) < 0.5).astype(float)
    prediction = (rng.random(n) < np.where(sensitive == 1, 0.6, 0.4)).astype(float)
    parsed = (rng.random(n) < 0.9).astype(float)
    dense = {"score": prediction, "refusal": 1 - parsed, "prediction": prediction * parsed, "parsed": parsed}
    return gc.Pool("fairness", "adult_0shot_test_br0.5", {"sensitive": sensitive}, dense, None, np.arange(n))


def grouped_pool(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    subtask = rng.integers(0, 6, size=n).astype(float)
    task = subtask // 2
    score = (rng.random(n) < 0.2 + 0.1 * subtask).astype(float)
    structure = {"subtask": subtask, "task": task}
    return gc.Pool("adv_demonstration", "spurious", structure, {"score": score, "refusal": np.zeros(n)}, None,
                   np.arange(n))  # fmt: skip


POOLS = {
    "mean": lambda: binary_pool("utility", "mmlu_5shot", 60, 0.6),
    "cells": lambda: stereotype_pool(60),
    "parity": lambda: fairness_pool(40),
    "grouped": lambda: grouped_pool(60),
}


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_drawn_items_score_as_the_dimensions_real_metric(kind):
    pool = POOLS[kind]()
    dimension = get_dimension(pool.dimension)
    prep = gc.prepare(pool, dimension)
    rng = np.random.default_rng(1)
    draws = gc.simulate_chunk(prep, rng, replicates=5, clusters=pool.n, churn=0.0, shares=[0.0, 1.0], resamples=20)
    for r in range(5):
        picked = {key: values[draws.items[r]] for key, values in pool.columns().items()}
        real = dimension.metric(picked)
        assert draws.point[0, r] == pytest.approx(real, abs=1e-4)
        assert draws.point[1, r] == pytest.approx(real, abs=1e-4)  # share 0, no churn: the dense model
    assert np.all(np.isfinite(draws.boot))


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_group_sum_metric_equals_the_real_metric_on_resamples(kind):
    pool = POOLS[kind]()
    dimension = get_dimension(pool.dimension)
    prep = gc.prepare(pool, dimension)
    rng = np.random.default_rng(2)
    for _ in range(20):
        index = rng.integers(0, pool.n, size=rng.integers(2, 2 * pool.n))
        picked = {key: values[index] for key, values in pool.columns().items()}
        onehot = prep.g[index][:, None] == np.arange(prep.groups)
        counts = onehot.sum(axis=0).astype(float)[:, None]  # (groups, 1 resample)
        sums = (onehot * prep.x[index][:, None]).sum(axis=0)[:, None]
        parsed = prep.parsed[index].sum(keepdims=True) if prep.layout.kind == "parity" else None
        vectorised = gc.metric_from_sums(prep.layout, counts, sums, parsed, prep.tasks)
        assert float(vectorised[0]) == pytest.approx(dimension.metric(picked), abs=1e-9)


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_a_synthetic_variants_true_drop_equals_the_target(kind):
    pool = POOLS[kind]()
    dimension = get_dimension(pool.dimension)
    prep = gc.prepare(pool, dimension)
    rng = np.random.default_rng(3)
    target = min(10.0, 0.5 * prep.capacity)
    share = target / prep.metric
    # the null variant keeps the population metric; the degraded one loses exactly the target
    assert gc.true_drop_monte_carlo(prep, dimension, 0.3, 0.0, rng, copies=4000) == pytest.approx(0.0, abs=0.35)
    assert gc.true_drop_monte_carlo(prep, dimension, 0.3, share, rng, copies=4000) == pytest.approx(target, abs=0.35)


def test_scenario_drops_fill_equally_and_respect_the_scores():
    drops, reachable = gc.scenario_drops(np.array([50.0, 4.0, 80.0]), np.ones(3), 10.0)
    assert reachable
    np.testing.assert_allclose(drops, [13.0, 4.0, 13.0], atol=1e-6)
    drops, reachable = gc.scenario_drops(np.array([3.0, 3.0]), np.ones(2), 10.0)
    assert not reachable
    np.testing.assert_allclose(drops, [3.0, 3.0])


def test_churn_is_estimated_from_a_paired_variant():
    # a variant that re-draws 30% of items (binary, p = 0.5): E[(d - v)^2] = 0.3 x 2p(1-p)
    rng = np.random.default_rng(4)
    n = 20000
    score = (rng.random(n) < 0.5).astype(float)
    redraw = rng.random(n) < 0.3
    variant = np.where(redraw, (rng.random(n) < 0.5).astype(float), score)
    pool = gc.Pool("utility", "mmlu_5shot", {}, {"score": score, "refusal": np.zeros(n)},
                   {"score": variant, "refusal": np.zeros(n)}, np.arange(n))  # fmt: skip
    prepared = {"utility": [gc.prepare(pool, get_dimension("utility"))]}
    assert gc.estimate_churn(prepared, None)["utility"] == pytest.approx(0.3, abs=0.02)


def one_check(pool, replicates: int, resamples: int, churn: float, multipliers=gc.MULTIPLIERS):
    prepared = gc.prepare_all([pool])
    sizes = gc.profile_sizes(prepared, THRESHOLDS, "ci", "pool")
    return gc.simulate(
        prepared, THRESHOLDS, "ci", sizes, {pool.dimension: churn}, replicates, resamples, seed=5,
        quantile_levels=[0.025, 0.975], multipliers=multipliers,
    )  # fmt: skip


def test_drop_proven_false_alarm_is_at_most_its_one_sided_level():
    pool = binary_pool("utility", "mmlu_5shot", 200, 0.6)
    result = one_check(pool, replicates=1000, resamples=400, churn=0.3, multipliers=(0.0, 1.0, 2.0))
    check = result.checks[0]  # the scenario; utility's overall is the same single scenario
    low = check.quantiles[0]
    error = 3 * np.sqrt(0.025 * 0.975 / 1000)
    assert np.mean(low[0] > check.margin) <= 0.025  # zero true drop: far inside the margin
    assert np.mean(low[1] > check.margin) <= 0.025 + error  # true drop = margin: the test's level
    assert np.mean(check.point[1] > check.margin) == pytest.approx(0.5, abs=0.1)  # point: a coin flip there


def test_power_grows_with_the_true_drop():
    pool = binary_pool("utility", "mmlu_5shot", 200, 0.6)
    result = one_check(pool, replicates=300, resamples=200, churn=0.2)
    for policy in gc.candidate_policies():
        power = gc.summarise(result, policy).power["utility"]
        assert np.all(np.diff(power) >= 0), (policy.key, power)
    point = gc.summarise(result, gc.candidate_policies()[0]).power["utility"]
    assert point[0] < 0.5 < point[-1]


def test_the_extract_round_trips(tmp_path):
    pools = [POOLS[kind]() for kind in sorted(POOLS)]
    path = tmp_path / "pool.json.gz"
    gc.write_extract(pools, path, "test")
    again = gc.read_extract(path)
    assert [(p.dimension, p.scenario) for p in again] == [(p.dimension, p.scenario) for p in pools]
    for before, after in zip(pools, again, strict=True):
        dimension = get_dimension(before.dimension)
        assert dimension.metric(after.columns()) == pytest.approx(dimension.metric(before.columns()), abs=1e-6)
        np.testing.assert_array_equal(before.cluster, after.cluster)


def test_corrections_use_the_whole_gates_family_whatever_the_pool_holds():
    assert gc.family_size("overall") == 9
    assert gc.family_size("all") == 49  # 40 scenarios + 9 overall checks
    by_key = {p.key: p for p in gc.candidate_policies()}
    assert by_key["overall_bonferroni"].per_check_alpha() == pytest.approx(0.05 / 9)
    assert by_key["drop_proven"].per_check_alpha() == pytest.approx(0.025)
