"""The gate-calibration simulation: faithful metrics, known true drops, calibrated rules."""

from __future__ import annotations

import dataclasses
import re

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
    looks = (0.25, 0.5, 1.0)
    draws = gc.simulate_chunk(
        prep, rng, replicates=5, clusters=pool.n, churn=0.0, shares=[0.0, 1.0], resamples=20, looks=looks
    )
    for look, m in zip(draws.looks, gc.look_items(prep, pool.n, looks), strict=True):
        assert look.n == m
        for r in range(5):  # each look scores the first m drawn items
            picked = {key: values[draws.items[r][:m]] for key, values in pool.columns().items()}
            real = dimension.metric(picked)
            assert look.point[0, r] == pytest.approx(real, abs=1e-4)
            assert look.point[1, r] == pytest.approx(real, abs=1e-4)  # share 0, no churn: the dense model
        assert np.all(np.isfinite(look.boot))


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
    low = result.quantile(check, 0.025)
    error = 3 * np.sqrt(0.025 * 0.975 / 1000)
    assert np.mean(low[0] > check.margin) <= 0.025  # zero true drop: far inside the margin
    assert np.mean(low[1] > check.margin) <= 0.025 + error  # true drop = margin: the test's level
    assert np.mean(check.point[1] > check.margin) == pytest.approx(0.5, abs=0.1)  # point: a coin flip there


def test_power_grows_with_the_true_drop():
    pool = binary_pool("utility", "mmlu_5shot", 200, 0.6)
    policies = gc.candidate_policies()
    result = one_check_looks(pool, policies, churn=0.2, replicates=300, resamples=200, multipliers=gc.MULTIPLIERS)
    for policy in policies:
        if not gc.resolvable(policy, 200):
            continue
        power = gc.summarise(result, policy).power["utility"]
        assert np.all(np.diff(power) >= -0.01), (policy.key, power)
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


# -- the new gate policy: looks, statistical INCONCLUSIVE, the policy read from thresholds.toml -----

ALPHA = 0.01  # interim_alpha of the policies below


def looks_policy(rule="drop_proven", looks=(0.25, 0.5, 1.0), min_look_items=20, multiplicity="none", **kw):
    return gc.Policy(
        "t", "test", rule, blocking="overall", multiplicity=multiplicity, looks=looks, interim_alpha=ALPHA,
        min_look_items=min_look_items, statistical_inconclusive=True, family=9, **kw,
    )  # fmt: skip


def made_check(final: dict[float, float], point: float, interim: list[dict[float, float]] | None = None,
               look_items=(30, 60), rise=0.0, rise_se=0.0, answered=50.0, refusal_rise=0.0, smallest=None,
               refusal_se=None):  # fmt: skip
    """A one-check SimulationResult, one level and one replicate, with the given drop quantiles."""
    levels = sorted(final)
    interim = interim or []
    smallest = smallest or look_items
    looks = []
    for j, quantiles in enumerate(interim):
        q = sorted(quantiles)
        looks.append(
            gc.LookStats(
                fraction=(0.25, 0.5)[j],
                n_items=look_items[j],
                smallest_scenario=smallest[j],
                quantile_levels=tuple(q),
                quantiles=np.array([[[quantiles[v]]] for v in q]),
                point=np.array([[point]]),
                variant_score=np.array([[50.0]]),
                refusal_rise=np.array([[rise]]),
                refusal_se=np.array([[rise_se]]),
                answered=np.array([answered]),
            )
        )
    check = gc.CheckStats(
        dimension="utility", scenario="overall", margin=5.0, max_refusal_rise=10.0, true_drop=np.array([0.0]),
        point=np.array([[point]]), quantiles=np.array([[[final[v]]] for v in levels]), p_value=np.array([[1.0]]),
        refusal_rise=np.array([[refusal_rise]]), inconclusive=np.array([False]), width=np.array([[1.0]]),
        n_items=look_items[-1] * 2, variant_score=np.array([[50.0]]), looks=looks,
        refusal_se=None if refusal_se is None else np.array([[refusal_se]]),
    )  # fmt: skip
    schedule = (0.25, 0.5, 1.0)[-(len(interim) + 1) :] if interim else (1.0,)
    if len(interim) == 1:
        schedule = (0.25, 1.0)
    return gc.SimulationResult("ci", (0.0,), tuple(levels), [check], 1, 1, 0.0, looks=schedule)


def verdict(result, policy):
    fail, _, inconclusive, stop, overridable, _ = gc.judge_check(result, result.checks[0], policy, policy.rule)
    name = "FAIL" if fail[0, 0] else "INCONCLUSIVE" if inconclusive[0, 0] else "PASS"
    return name, int(stop[0, 0]), bool(overridable[0, 0])


def test_look_items_take_the_first_keys_rounded_up():
    pool = gc.Pool("utility", "mmlu_5shot", {}, {"score": np.zeros(40), "refusal": np.zeros(40)}, None,
                   np.repeat(np.arange(20), 2))  # fmt: skip
    prep = gc.prepare(pool, get_dimension("utility"))
    assert gc.look_items(prep, 48, (0.25, 0.5, 1.0)) == [24, 48, 96]  # 12, 24, 48 keys of 2 items
    assert gc.look_items(prep, 5, (0.25, 0.5, 1.0)) == [4, 6, 10]  # ceil(1.25) = 2, ceil(2.5) = 3 keys


@pytest.mark.parametrize(
    "interval, point, rule, expected",
    [
        ((2.0, 7.0), 4.5, "drop_proven", "PASS"),  # straddles; detectable 5 + 2.80 x 1.28 = 8.6 <= 10
        ((0.0, 9.0), 4.5, "drop_proven", "INCONCLUSIVE"),  # detectable 5 + 2.80 x 2.30 = 11.4 > 10
        ((0.0, 4.9), 2.5, "drop_proven", "PASS"),  # does not straddle: proven within the margin
        ((5.1, 20.0), 12.0, "drop_proven", "FAIL"),
        ((0.0, 9.0), 4.5, "point", "PASS"),  # point: detectable 5 + 0.84 x 2.30 = 6.9
        ((-5.0, 20.0), 4.5, "point", "INCONCLUSIVE"),  # 5 + 0.84 x 6.38 = 10.4 > 10
        ((-5.0, 20.0), 7.5, "point", "FAIL"),  # the rule fails: INCONCLUSIVE only replaces a PASS
        ((0.5, 9.5), 6.0, "drop_significant", "FAIL"),  # a drop shown (low > 0), estimated beyond 5
        ((0.5, 9.5), 4.5, "drop_significant", "PASS"),  # detectable max(5, 1.96 x 2.30) + 0.84 x 2.30 = 6.9
        ((-5.0, 20.0), 7.5, "drop_significant", "INCONCLUSIVE"),  # no drop shown; 12.5 + 5.4 = 17.9 > 10
    ],
)
def test_statistical_inconclusive_at_the_last_look(interval, point, rule, expected):
    result = made_check({0.025: interval[0], 0.975: interval[1]}, point)
    name, _, overridable = verdict(result, looks_policy(rule, looks=(1.0,)))
    assert name == expected
    assert overridable == (expected == "FAIL" and rule == "point")


def test_statistical_inconclusive_uses_the_multiplicity_adjusted_interval():
    alpha = 0.05 / 9
    # at 95% [0, 9] is INCONCLUSIVE under drop_proven; the Bonferroni interval used here is [1, 6]
    result = made_check({0.025: 0.0, 0.975: 9.0, alpha: 1.0, 1 - alpha: 6.0}, 3.5)
    assert verdict(result, looks_policy(looks=(1.0,), multiplicity="bonferroni"))[0] == "PASS"
    assert verdict(result, looks_policy(looks=(1.0,), multiplicity="none"))[0] == "INCONCLUSIVE"


def test_interim_alpha_is_split_over_the_interim_looks_taken():
    final = {0.025: 0.0, 0.975: 4.0}
    a1, a2 = ALPHA / 2, ALPHA / 4  # k = 1: alpha/2 a side; k = 2: alpha/4 a side
    look = {a2: 4.0, a1: 6.0, 1 - a1: 14.0, 1 - a2: 15.0}
    # two interim looks with enough items: the first uses alpha/4, whose low end 4 <= margin: go on
    result = made_check(final, 10.0, [look, look], look_items=(30, 60, 120))
    assert verdict(result, looks_policy())[:2] == ("PASS", 2)  # never proven either way: the last look decides
    # the first look below min_look_items is skipped: one interim look taken, at alpha/2: low 6 > 5, FAIL
    result = made_check(final, 10.0, [look, look], look_items=(10, 60, 120))
    assert verdict(result, looks_policy())[:2] == ("FAIL", 1)
    result = made_check(final, 10.0, [look, look], look_items=(30, 60, 120))
    assert verdict(result, looks_policy(looks=(0.25, 1.0)))[:2] == ("FAIL", 0)


def test_an_interim_pass_needs_the_refusal_bound_and_the_dense_answers():
    final = {0.025: 0.0, 0.975: 4.0}
    look = {ALPHA / 2: -3.0, 1 - ALPHA / 2: 3.0}
    policy = looks_policy(looks=(0.25, 1.0))
    assert verdict(made_check(final, 0.0, [look]), policy)[:2] == ("PASS", 0)
    z = 2.5758293035489  # the interim refusal interval: rise +- z x se
    assert verdict(made_check(final, 0.0, [look], rise=2.0, rise_se=8.0 / z + 0.01), policy)[1] == 1
    assert verdict(made_check(final, 0.0, [look], rise=2.0, rise_se=8.0 / z - 0.01), policy)[:2] == ("PASS", 0)
    assert verdict(made_check(final, 0.0, [look], rise=12.0, rise_se=1.0), policy)[1] == 1  # low 9.4: go on
    assert verdict(made_check(final, 0.0, [look], rise=14.0, rise_se=1.0), policy)[:2] == ("FAIL", 0)
    assert verdict(made_check(final, 0.0, [look], answered=5.0), policy)[1] == 1  # the dense model must answer
    assert verdict(made_check(final, 0.0, [{ALPHA / 2: 5.5, 1 - ALPHA / 2: 9.0}]), policy)[:2] == ("FAIL", 0)


def test_an_interim_look_fails_drop_significant_on_a_shown_drop_beyond_the_margin():
    final = {0.025: 0.0, 0.975: 4.0}
    look = {ALPHA / 2: 0.5, 1 - ALPHA / 2: 14.0}  # a drop shown at the interim level, not beyond 5
    policy = looks_policy(rule="drop_significant", looks=(0.25, 1.0))
    assert verdict(made_check(final, 7.0, [look]), policy)[:2] == ("FAIL", 0)  # estimate 7 > 5
    assert verdict(made_check(final, 4.0, [look]), policy)[1] == 1  # estimate 4: go on to the last look
    assert verdict(made_check(final, 7.0, [look]), looks_policy(looks=(0.25, 1.0)))[1] == 1  # drop_proven: go on


def test_the_last_looks_refusal_bound_needs_the_rise_shown_under_the_evidence_rules():
    final = {0.025: -2.0, 0.975: 2.0}  # the drop: well within the margin
    noisy, shown = {"refusal_rise": 15.0, "refusal_se": 8.0}, {"refusal_rise": 15.0, "refusal_se": 2.0}
    for rule in ("drop_proven", "drop_significant"):
        policy = looks_policy(rule=rule, looks=(1.0,))
        assert verdict(made_check(final, 0.0, **noisy), policy)[0] == "PASS"  # 15 - 1.96 x 8 < 0: not shown
        assert verdict(made_check(final, 0.0, **shown), policy)[0] == "FAIL"
    assert verdict(made_check(final, 0.0, **noisy), looks_policy(rule="point", looks=(1.0,)))[0] == "FAIL"


def wide_pool(n=400, seed=0):
    return binary_pool("utility", "mmlu_5shot", n, 0.6, seed)


def test_a_wrecked_variant_fails_at_the_first_look_and_an_identical_one_passes_there():
    pool = wide_pool()
    prepared = gc.prepare_all([pool])
    thresholds = THRESHOLDS.model_copy(deep=True)
    sizes = {("utility", "mmlu_5shot"): 400}
    policy = looks_policy(rule="point", looks=(0.25, 0.5, 1.0))
    result = gc.simulate(
        prepared, thresholds, "ci", sizes, {"utility": 0.0}, 50, 300, seed=1,
        quantile_levels=gc.quantile_levels_for([policy]), multipliers=(0.0, 20.0),
        looks=policy.looks, interim_levels=gc.interim_levels_for([policy]),
    )  # fmt: skip
    summary = gc.summarise(result, policy)
    judged = gc.judge(result, policy)
    assert np.all(judged.stop[0] == 0) and not judged.fail[0].any()  # identical: PASS at 25%
    assert np.all(judged.stop[1] == 0) and judged.fail[1].all()  # 60-point drop: FAIL at 25%
    assert summary.items["utility"] == pytest.approx([0.25, 0.25])
    fixed = gc.summarise(result, dataclasses.replace(policy, looks=(1.0,)))
    assert fixed.items["utility"] == pytest.approx([1.0, 1.0])


def test_looks_keep_the_false_alarm_and_save_items():
    pool = wide_pool(400)
    on = looks_policy(rule="drop_proven", multiplicity="none")
    off = dataclasses.replace(on, looks=(1.0,))
    result = one_check_looks(pool, [on, off], churn=0.05, replicates=600, resamples=400)
    s_on, s_off = gc.summarise(result, on), gc.summarise(result, off)
    error = 3 * np.sqrt(0.03 * 0.97 / 600)
    assert s_on.power["utility"][1] <= 0.025 + ALPHA / 2 + error  # at the margin: final + interim one-sided
    assert s_on.items_total[0] < 0.9  # zero drop on 400 items: many runs stop early
    assert s_off.items_total[0] == 1.0
    assert abs(s_on.power["utility"][2] - s_off.power["utility"][2]) < 0.1


def one_check_looks(pool, policies, churn, replicates, resamples, multipliers=(0.0, 1.0, 2.0)):
    prepared = gc.prepare_all([pool])
    sizes = gc.profile_sizes(prepared, THRESHOLDS, "ci", "pool")
    return gc.simulate(
        prepared, THRESHOLDS, "ci", sizes, {pool.dimension: churn}, replicates, resamples, seed=5,
        quantile_levels=gc.quantile_levels_for(policies), multipliers=multipliers,
        looks=gc.looks_for(policies), interim_levels=gc.interim_levels_for(policies),
    )  # fmt: skip


NEW_KEYS = """
scenario_checks = "blocking"
multiplicity = "none"
looks = [0.5, 1.0]
interim_alpha = 0.02
min_look_items = 12
"""


NEW_KEY_NAMES = ("scenario_checks", "multiplicity", "family_alpha", "looks", "interim_alpha", "min_look_items")


def thresholds_with(tmp_path, gate_lines: str, rule: str = "drop_proven"):
    """The repository's thresholds.toml without its issue-11 [gate] keys, plus `gate_lines`."""
    text = (gc.REPO_ROOT / "thresholds.toml").read_text(encoding="utf-8")
    text = re.sub(rf"(?m)^({'|'.join(NEW_KEY_NAMES)}) = .*\n", "", text)
    text = re.sub(r'(?m)^rule = "\w+"\n', lambda _: f'rule = "{rule}"\n' + gate_lines, text, count=1)
    path = tmp_path / "thresholds.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_policy_is_read_from_thresholds_toml(tmp_path):
    _, settings = gc.load_gate(thresholds_with(tmp_path, NEW_KEYS))
    policy = gc.policy_from_settings(settings)
    assert (policy.rule, policy.blocking, policy.multiplicity) == ("drop_proven", "all", "none")
    assert policy.looks == (0.5, 1.0) and policy.interim_alpha == 0.02 and policy.min_look_items == 12
    assert policy.interval_alpha() == pytest.approx(0.025)  # confidence 0.95, no correction
    assert {settings.source[key] for key in ("scenario_checks", "multiplicity", "looks")} == {"thresholds.toml"}
    # keys the file leaves out: the defaults (Bonferroni over the 9 blocking dimensions, looks on)
    _, settings = gc.load_gate(thresholds_with(tmp_path, "", rule="point"))
    policy = gc.policy_from_settings(settings)
    assert (policy.rule, policy.blocking, policy.multiplicity) == ("point", "overall", "bonferroni")
    assert policy.interval_alpha() == pytest.approx(0.05 / 9) and policy.looks == (0.25, 0.5, 1.0)
    with pytest.raises(SystemExit, match="multiplicity"):
        gc.load_gate(thresholds_with(tmp_path, 'multiplicity = "holm"\n'))
    with pytest.raises(SystemExit, match="looks"):
        gc.load_gate(thresholds_with(tmp_path, "looks = [0.5, 0.9]\n"))


def test_the_last_line_reports_the_thresholds_policy(tmp_path, capsys):
    pools = [wide_pool(120, seed=3)]
    extract = tmp_path / "pool.json.gz"
    gc.write_extract(pools, extract, "test")
    common = ["--simulate", "--pool", str(extract), "--replicates", "200", "--resamples", "200", "--profiles", "ci",
              "--no-grow", "--sweep", "", "--release-sizes", "pool"]  # fmt: skip
    lines = {}
    for rule in ("point", "drop_proven"):
        path = thresholds_with(tmp_path, 'multiplicity = "none"\n', rule=rule)
        gc.main([*common, "--thresholds", str(path)])
        out = capsys.readouterr().out.strip().splitlines()
        assert any(f"rule {rule}, scenario checks informational, multiplicity none" in line for line in out)
        last = out[-1]
        assert re_line.fullmatch(last), last
        default = next(line for line in out if line.startswith("default [ci]"))
        x = float(default.split("false alarm ")[1].split(",")[0])
        y = float(default.split("min ")[1].split(" ")[0])
        assert last == f"calibration: family-wise false alarm {x:.3f} (ci), power at 2x margin {y:.3f} (ci)"
        lines[rule] = last
    assert lines["point"] != lines["drop_proven"]  # 120 items: point detects more than drop_proven


re_line = re.compile(r"calibration: family-wise false alarm \d\.\d{3} \(ci\), power at 2x margin \d\.\d{3} \(ci\)")


def test_the_exact_sequential_verdict_stops_at_the_first_look():
    pool = wide_pool(160, seed=2)
    dimension = get_dimension("utility")
    prep = gc.prepare(pool, dimension)
    rng = np.random.default_rng(0)
    policy = looks_policy(rule="drop_proven", looks=(0.25, 1.0), min_look_items=20)
    prefixes = {"mmlu_5shot": gc.look_items(prep, 160, policy.looks)}
    same = gc.synthetic_runs(prep, dimension, rng, 160, 0.0, 0.0)
    wrecked = gc.synthetic_runs(prep, dimension, rng, 160, 0.0, 1.0)
    for (dense, variant), expected in ((same, "PASS"), (wrecked, "FAIL")):
        got = gc.exact_sequential_verdict(
            dimension, {"mmlu_5shot": dense}, {"mmlu_5shot": variant}, policy, THRESHOLDS, prefixes, 300
        )
        assert got == (expected, 0)


def test_min_look_items_per_scenario_skips_a_look_with_a_small_scenario():
    final = {0.025: 0.0, 0.975: 4.0}
    look = {ALPHA / 2: 0.0, 1 - ALPHA / 2: 0.0}  # a degenerate look: every resample gives drop 0
    result = made_check(final, 0.0, [look], look_items=(22, 88), smallest=(2, 8))
    total = looks_policy(looks=(0.25, 1.0))
    per_scenario = dataclasses.replace(total, look_minimum="per_scenario")
    assert verdict(result, total)[:2] == ("PASS", 0)  # 22 items in all: the look is taken, and passes
    assert verdict(result, per_scenario)[:2] == ("PASS", 1)  # 2 items in a scenario: skipped


def test_fairness_on_few_items_per_setting_passes_a_degenerate_first_look():
    # 11 settings x 8 items: the first look holds 2 items a setting, below fairness's 3 parsed answers,
    # so both models score 100 and the look PASSes whatever the variant does (as the gate would)
    pools = [fairness_pool(8, seed=k) for k in range(11)]
    for k, pool in enumerate(pools):
        pool.scenario = get_dimension("fairness").scenarios[k]
        pool.dense["parsed"] = np.ones(8)  # every answer parsed, none refused
        pool.dense["refusal"] = np.zeros(8)
        pool.dense["prediction"] = pool.dense["score"]
    prepared = gc.prepare_all(pools)
    sizes = {("fairness", p.scenario): 8 for p in pools}
    total = looks_policy(rule="point", looks=(0.25, 1.0))
    per_scenario = dataclasses.replace(total, look_minimum="per_scenario")
    result = gc.simulate(
        prepared, THRESHOLDS, "ci", sizes, {"fairness": 0.2}, 100, 200, seed=2,
        quantile_levels=gc.quantile_levels_for([total]), multipliers=(0.0, 2.0),
        looks=total.looks, interim_levels=gc.interim_levels_for([total]),
    )  # fmt: skip
    assert gc.summarise(result, total).items["fairness"] == pytest.approx([0.25, 0.25])
    assert gc.summarise(result, total).power["fairness"][1] == 0.0
    assert gc.summarise(result, per_scenario).items["fairness"] == pytest.approx([1.0, 1.0])


def test_too_few_items_follow_the_profile_and_a_silent_base_model_follows_inconclusive(tmp_path):
    _, settings = gc.load_gate(thresholds_with(tmp_path, ""))
    assert dict(settings.too_few_items) == {"ci": "warn", "release": "fail"}  # thresholds.toml's profiles
    policy = gc.policy_from_settings(settings)
    assert not policy.too_few_blocks("ci") and not policy.too_few_blocks("ci-grown")
    assert policy.too_few_blocks("release") and policy.inconclusive_blocks
    assert policy.interim_level(2) == pytest.approx(0.01 / (2 * 9))  # spent over the 9 dimensions too


def test_the_simulated_gate_resamples_whole_sample_keys_under_resample_sample_key():
    # 24 keys of 12 items, every item of a key with the key's outcome: a bootstrap over keys spreads
    # the score sqrt(12) times wider than one over items, as the gate's resampler(keys=...) does;
    # with fewer than MIN_KEYS_TO_RESAMPLE keys (a look at 8 of them) both resample items.
    keys, per_key = 24, 12
    score = np.repeat(np.arange(keys) % 2, per_key).astype(float)
    pool = gc.Pool("utility", "mmlu_5shot", {}, {"score": score, "refusal": np.zeros(keys * per_key)}, None,
                   np.repeat(np.arange(keys), per_key))  # fmt: skip
    prep = gc.prepare(pool, get_dimension("utility"))
    spread = {}
    for resample in ("item", "sample_key"):
        draws = gc.simulate_chunk(prep, np.random.default_rng(3), 20, keys, 0.0, [0.0], 1000, resample=resample)
        spread[resample] = draws.final.boot[0].std(axis=-1)  # the dense score's, per replicate
    varied = spread["item"] > 0
    assert varied.sum() >= 15
    ratio = spread["sample_key"][varied] / spread["item"][varied]
    assert 2.8 < np.median(ratio) < 4.2
    few = [gc.simulate_chunk(prep, np.random.default_rng(3), 20, 8, 0.0, [0.0], 200, resample=r) for r in spread]
    assert np.array_equal(few[0].final.boot, few[1].final.boot)


def test_key_churn_moves_a_keys_items_together_from_one_other_key():
    keys, per_key = 4, 6
    cluster = np.repeat(np.arange(keys), per_key)
    pool = gc.Pool("utility", "mmlu_5shot", {}, {"score": (cluster % 2).astype(float), "refusal": np.zeros(24)},
                   None, cluster)  # fmt: skip
    prep = gc.prepare(pool, get_dimension("utility"))
    rng = np.random.default_rng(0)
    items = gc.draw_items(prep, rng, 50, keys)
    source = gc.churn_sources(prep, items, rng, 1.0, "sample_key")
    for drawn, came in zip(items.reshape(50, keys, per_key), source.reshape(50, keys, per_key), strict=True):
        for own, other in zip(drawn, came, strict=True):
            assert len(set(cluster[other])) == 1 and cluster[other[0]] != cluster[own[0]]
            assert np.array_equal(other - other[0], own - own[0]), "position by position"
    unchanged = gc.churn_sources(prep, items, rng, 0.0, "sample_key")
    assert np.array_equal(unchanged, items)
