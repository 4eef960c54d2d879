"""The decision kernel at the levels and sizes the gate really uses: the boundary of the null,
12-item checks, interim looks, sample keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammaln

from tests.synthetic import make_dimension, make_runs
from trustgate.dimensions.metrics import GroupedMean, ParityScore, mean_item_score
from trustgate.gate import kernel
from trustgate.gate.check import interim_decision, with_levels
from trustgate.gate.compare import compare, compare_seeds
from trustgate.gate.kernel import Evidence, Levels, Stratum, paired_evidence
from trustgate.gate.policy import Thresholds, load_thresholds

ROOT = Path(__file__).resolve().parent.parent


def shipped_policy(dimension: str = "utility"):
    """The gate's own default policy, from the shipped thresholds.toml."""
    return load_thresholds(ROOT / "thresholds.toml").for_run({}).policy(dimension, profile="ci")


def check(dense, variant, policy=None):
    dimension = make_dimension("utility", scenarios=("a",))
    return compare(
        dimension,
        "a",
        make_runs(dimension, "dense", {"a": dense}),
        make_runs(dimension, "v", {"a": variant}),
        policy or shipped_policy(),
    )


def score_evidence(lost, gained, n) -> Evidence:
    lost, gained = np.asarray(lost), np.asarray(gained)
    return Evidence((lost - gained) * 100.0 / n, "score", np.nan, np.inf, n, lost, gained, n)


def outcomes(n: int):
    i, j = np.triu_indices(n + 1)
    return i, n - j  # every (lost, gained) with lost + gained <= n


def worst_size(n: int, margin: float, rejects: np.ndarray) -> float:
    """The largest chance, over the null boundary's nuisance, that `rejects` fires."""
    b, c = outcomes(n)
    delta, worst = margin / 100, 0.0
    for q in np.linspace(0, (1 - delta) / 2, 241):
        pb, pc, p0 = q + delta, q, max(1 - 2 * q - delta, 0.0)
        with np.errstate(divide="ignore"):
            logp = (
                gammaln(n + 1)
                - gammaln(b + 1)
                - gammaln(c + 1)
                - gammaln(n - b - c + 1)
                + b * np.log(pb)
                + np.where(c > 0, c * np.log(max(pc, 1e-300)), 0)
                + np.where(n - b - c > 0, (n - b - c) * np.log(max(p0, 1e-300)), 0)
            )
        worst = max(worst, float(np.exp(logp)[rejects].sum()))
    return worst


def test_the_default_per_check_levels_are_the_family_split_over_nine_checks_and_two_tests():
    policy = shipped_policy()
    assert policy.alpha == pytest.approx(0.05 / 9 * 0.95) and policy.rise_alpha == pytest.approx(0.05 / 9 * 0.05)


def test_twelve_binary_items_with_five_lost_do_not_fail_at_margin_five():
    # exact evidence against "drop <= 5 points" is p = 0.029, far from the per-check 0.53%
    result = check([1.0] * 12, [0.0] * 5 + [1.0] * 7)
    assert result.verdict != "FAIL" and not any("exceeds margin" in f for f in result.failures)


def test_eight_lost_of_twelve_fail():
    result = check([1.0] * 12, [0.0] * 8 + [1.0] * 4)
    assert result.verdict == "FAIL" and "exact score test, 12 items" in result.line()


@pytest.mark.parametrize("n", [12, 24, 48, 96])
@pytest.mark.parametrize("alpha", [0.05 / 9 * 0.95, 0.05 / 9 * 0.05, 1e-4])
def test_the_drop_test_holds_its_level_at_the_margin_for_every_nuisance(n, alpha):
    b, c = outcomes(n)
    rejects = kernel.rule_fails("drop_proven", score_evidence(b, c, n), 5.0, alpha)
    assert worst_size(n, 5.0, rejects) <= alpha * 1.0001


@pytest.mark.parametrize("n", [12, 48, 200])
def test_a_refusal_rise_exactly_at_the_bound_fails_at_most_at_the_nominal_rate(n):
    alpha = shipped_policy().rise_alpha
    b, c = outcomes(n)  # b: items the variant newly refuses, c: items it newly answers
    rejects = kernel.rule_fails("drop_proven", score_evidence(b, c, n), 10.0, alpha)
    assert worst_size(n, 10.0, rejects) <= alpha * 1.0001


def test_an_all_agree_twelve_item_look_does_not_pass_early():
    dimension = make_dimension("utility", scenarios=("a",))
    for scores in ([0.0] * 12, [1.0] * 12):
        dense, variant = make_runs(dimension, "dense", {"a": scores}), make_runs(dimension, "v", {"a": scores})
        levels = kernel.look_levels(shipped_policy().levels, [0.25, 0.5, 1.0])[0]
        decision, _ = interim_decision(dimension, "a", dense, variant, with_levels(shipped_policy(), levels))
        assert decision != "PASS"


def test_a_large_all_agree_sample_can_be_proven_within_the_margin():
    result = check([1.0] * 300 + [0.0] * 100, [1.0] * 300 + [0.0] * 100)
    assert result.verdict == "PASS" and result.flips == 0.0


def test_spending_gives_each_look_its_increment_and_all_of_alpha_in_total():
    levels = kernel.look_levels(Levels(0.005, 0.0003), [0.25, 0.5, 1.0])
    assert sum(lv.drop for lv in levels) == pytest.approx(0.005)
    assert sum(lv.rise for lv in levels) == pytest.approx(0.0003)
    assert levels[0].drop < 1e-6 < levels[1].drop < levels[2].drop


def test_the_jackknife_of_a_mean_is_the_paired_t_test():
    rng = np.random.default_rng(1)
    dense, variant = rng.uniform(size=30), rng.uniform(size=30)
    metric = GroupedMean("score")
    evidence = paired_evidence([Stratum(metric, {"score": dense}, ({"score": variant},), np.arange(30))])
    d = 100 * (dense - variant)
    assert evidence.method == "jackknife-t" and float(evidence.df) == pytest.approx(29)
    assert float(evidence.se) == pytest.approx(d.std(ddof=1) / np.sqrt(30))
    from scipy import stats

    assert float(evidence.p_above(2.0)) == pytest.approx(stats.ttest_1samp(d, 2.0, alternative="greater").pvalue)


def test_items_of_a_key_leave_together_and_give_the_keys_degrees_of_freedom():
    rng = np.random.default_rng(2)
    keys = np.repeat(np.arange(8), 12)  # 8 keys of 12 items: OOD few-shot at ci
    moved = np.repeat(rng.uniform(size=8) < 0.5, 12)  # a key's items change together
    dense = np.ones(96)
    variant = np.where(moved, 0.0, 1.0)
    clustered = paired_evidence([Stratum(mean_item_score, {"score": dense}, ({"score": variant},), keys)])
    items = paired_evidence([Stratum(mean_item_score, {"score": dense}, ({"score": variant},), np.arange(96))])
    assert float(clustered.df) == pytest.approx(7) and clustered.units == 8
    assert float(clustered.p_above(5.0)) > 100 * float(items.p_above(5.0))  # 8 observations, not 96


def test_scenarios_that_share_keys_are_one_cluster_set():
    keys = np.arange(16)
    d1, d2 = np.ones(16), np.ones(16)
    v = np.where(np.arange(16) < 4, 0.0, 1.0)
    both = [Stratum(mean_item_score, {"score": d}, ({"score": v},), keys, 0.5) for d in (d1, d2)]
    evidence = paired_evidence(both)
    assert float(evidence.df) == pytest.approx(15) and evidence.units == 16


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.floats(0, 1)), min_size=2, max_size=30))
def test_weighted_metrics_equal_the_metric_at_unit_weights(rows):
    columns = {
        "score": np.array([r[2] for r in rows]),
        "subtask": np.array([float(r[0]) for r in rows]),
        "task": np.array([float(r[0] % 2) for r in rows]),
        "cell": np.array([float(r[1]) for r in rows]),
        "agree": np.array([r[2] for r in rows]),
        "prediction": np.array([r[2] for r in rows]),
        "sensitive": np.array([float(r[1] % 2) for r in rows]),
        "parsed": np.ones(len(rows)),
    }
    for metric in (
        GroupedMean("score"),
        GroupedMean("score", inner="subtask", outer="task"),
        GroupedMean("agree", inner="cell", complement=True),
        ParityScore(min_parsed=3),
    ):
        assert float(metric.weighted(columns, np.ones(len(rows)))) == pytest.approx(metric(columns), abs=1e-9)


def test_a_cell_drawn_twice_counts_twice():
    columns = {"agree": np.array([1.0, 0.0]), "cell": np.array([0.0, 1.0])}
    metric = GroupedMean("agree", inner="cell", complement=True)
    assert float(metric.weighted(columns, np.array([2.0, 1.0]))) == pytest.approx(100 * (1 - 2 / 3))


def test_a_weighting_that_loses_a_sensitive_group_judges_the_groups_it_kept():
    columns = {"prediction": np.array([1.0, 0.0, 0.0]), "sensitive": np.array([0.0, 1.0, 1.0]), "parsed": np.ones(3)}
    metric = ParityScore(min_parsed=1)
    assert float(metric.weighted(columns, np.array([0.0, 1.0, 1.0]))) == 100.0
    assert float(metric.weighted(columns, np.ones(3))) == pytest.approx(0.0)


def test_blocking_scenario_checks_grow_the_family_and_the_terminal_says_so():
    raw = {"gate": {"margin": 5.0, "max_refusal_rise": 10.0, "scenario_checks": "blocking"}, "profiles": {}}
    thresholds = Thresholds.model_validate(raw).for_run({"utility": ("a", "b"), "privacy": ("x", "y", "z")})
    assert thresholds.family_size() == 9 + 2 + 3
    assert "14 blocking checks" in thresholds.family_line()
    run = Thresholds.model_validate({**raw, "gate": {**raw["gate"], "family": "run"}}).for_run({}, variants=3)
    assert run.family_size() == 9 * 3


def test_worst_seed_fails_when_any_seed_alone_proves_a_drop():
    dimension = make_dimension("utility", scenarios=("a",))
    dense = make_runs(dimension, "dense", {"a": [1.0] * 48})
    seeds = {
        "s0": make_runs(dimension, "s0", {"a": [1.0] * 48}),
        "s1": make_runs(dimension, "s1", {"a": [0.0] * 30 + [1.0] * 18}),
    }
    policy = shipped_policy()
    worst = compare_seeds(dimension, "a", "g@seeds", dense, seeds, policy, worst_seed=True)
    assert worst.verdict == "FAIL" and any("seed s1" in f for f in worst.failures)
    same = {"s0": seeds["s0"], "s1": make_runs(dimension, "s1", {"a": [1.0] * 48})}
    assert compare_seeds(dimension, "a", "g@seeds", dense, same, policy, worst_seed=True).verdict != "FAIL"


def test_the_detectable_drop_is_none_where_the_dense_score_leaves_no_room():
    assert np.isnan(kernel.detectable_drop(12, 5.0, 0.005, disagreement=0.1, ceiling=8.0))
    assert float(kernel.detectable_drop(2000, 5.0, 0.005, disagreement=0.1)) < 10.0
    result = check([1.0] + [0.0] * 11, [1.0] + [0.0] * 11)
    assert "none at this n" in result.line()


def test_every_comparison_reports_its_flips():
    result = check([1.0] * 6 + [0.0] * 6, [0.0] * 6 + [1.0] * 6)
    assert result.flips == 1.0 and "flips 100.0%" in result.line()
    assert dataclasses.asdict(result)["flips"] == 1.0


def test_the_family_is_the_checks_the_run_selects():
    raw = {"gate": {"margin": 5.0, "max_refusal_rise": 10.0}, "profiles": {}}
    every = Thresholds.model_validate(raw).for_run({"privacy": ("enron", "pii", "understanding")})
    assert every.family_size() == 9
    one = Thresholds.model_validate(raw).for_run(selected={"privacy": frozenset({"overall", "enron", "pii"})})
    assert one.family_size() == 1 and one.check_alpha() == pytest.approx(0.05)  # -k privacy: one blocking check
    alone = Thresholds.model_validate(raw).for_run(selected={"stereotype": frozenset({"benign", "targeted"})})
    assert alone.family_size() == 2  # scenarios selected without their overall check are judged alone


def test_two_items_never_fail_a_variant_and_say_they_cannot_tell():
    # --trust-limit 2 once FAILed a variant on 2 items with a zero-width interval while printing that
    # it could detect a 5-point drop (issue 25, defect 9): two lost items prove nothing at 0.53%
    result = check([1.0, 1.0], [0.0, 0.0])
    assert result.verdict == "INCONCLUSIVE" and not result.failures
    assert "too few items to tell" in result.inconclusive and "none at this n" in result.line()


def test_a_variant_that_stops_answering_never_passes_on_a_rise_too_few_items_cannot_prove():
    # The main job at 33 stereotype items: gptq4's no-answer rate rose 57.6 -> 93.9 (12 items newly
    # unanswered), its agreement score "improved" by 36 points, proven within the margin; the rise,
    # tested at 0.028%, was proven neither beyond nor within its 10-point bound. It must not PASS.
    policy = shipped_policy("stereotype")
    better = score_evidence(0, 12, 33)  # the drop: 12 items gained (no answer scores as no agreement)

    def verdict(newly_unanswered: int, n: int = 33) -> str:
        decision = kernel.decide(
            policy.rule, better if n == 33 else score_evidence(0, n // 3, n), score_evidence(newly_unanswered, 0, n),
            policy.margin, policy.max_refusal_rise, policy.levels, detectable=float("nan"),
        )  # fmt: skip
        assert not bool(decision.rise_unclear) or bool(decision.too_few)
        return str(kernel.verdict(decision))

    assert verdict(12) == "INCONCLUSIVE"  # +36 points, unproven: cannot tell
    assert verdict(2) == "PASS"  # +6 points: within the bound by the estimate, the drop proven within
    assert verdict(110, n=300) == "FAIL"  # +37 points on 300 items: proven beyond the bound


def test_a_jackknife_over_fewer_than_ten_keys_decides_nothing():
    # At 2 sample keys a scenario (6 in all) adversarial demonstrations FAILed 2.2% of at-margin ci
    # runs against the nominal 0.53%: a jackknife's variance over so few keys can be ~0 by chance.
    policy = shipped_policy("adv_demonstration")
    quiet_rise = Evidence(np.asarray(0.0), "jackknife-t", np.asarray(1.0), np.asarray(50.0), 60)

    def decision(units: int) -> kernel.Decision:
        drop = Evidence(np.asarray(40.0), "jackknife-t", np.asarray(2.0), np.asarray(float(units - 1)), units)
        return kernel.decide(policy.rule, drop, quiet_rise, policy.margin, policy.max_refusal_rise, policy.levels,
                             detectable=12.0)  # fmt: skip

    few, enough = decision(6), decision(12)
    assert str(kernel.verdict(few)) == "INCONCLUSIVE" and bool(few.few_units) and not bool(few.failed)
    assert str(kernel.verdict(enough)) == "FAIL" and not bool(enough.few_units)
    interim = kernel.interim_decision(
        policy.rule, Evidence(np.asarray(40.0), "jackknife-t", np.asarray(2.0), np.asarray(5.0), 6), quiet_rise,
        policy.margin, policy.max_refusal_rise, policy.levels, detectable=12.0,
    )  # fmt: skip
    assert str(interim) == ""  # no interim verdict either


def test_a_scenario_held_at_one_sample_key_leaves_the_interval_undefined_and_says_so():
    # ci holds fairness's 16/32-shot settings at one key: leaving that key out empties the scenario,
    # so the jackknife's interval is undefined; the check decides nothing and says why.
    dimension = make_dimension("utility", scenarios=("a", "b"))
    scores = {"a": [1.0] * 30 + [0.0] * 10, "b": [1.0]}
    result = compare(
        dimension, "overall", make_runs(dimension, "dense", scores), make_runs(dimension, "v", scores),
        shipped_policy(),
    )  # fmt: skip
    assert result.verdict == "INCONCLUSIVE" and not result.failures
    assert "interval cannot be computed" in result.inconclusive
