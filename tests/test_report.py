"""Reports: the paper-style table, summary files, seed groups, redaction, Allure pieces, radar."""

from __future__ import annotations

import json
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compressors.variants import parse_variants
from tests.synthetic import make_dimension, make_runs, run_fake_suite
from trustgate.gate.compare import OVERALL, Comparison, compare, compare_seeds
from trustgate.gate.policy import Thresholds
from trustgate.gate.seeds import group_of, seed_groups
from trustgate.report.allure import (
    environment_properties,
    score_table_html,
    worst_items,
    worst_items_html,
    write_run_results,
)
from trustgate.report.radar import radar_png
from trustgate.report.redaction import redact
from trustgate.report.summary import RunSummary, run_context

PNG = b"\x89PNG\r\n\x1a\n"
POLICY = Thresholds.model_validate(
    {"gate": {"margin": 5.0, "max_refusal_rise": 10.0, "bootstrap_resamples": 200}, "profiles": {"ci": {}}}
).policy("utility")


def comparison(variant: str, variant_b: list[float], dimension_name: str = "utility"):
    dimension = make_dimension(dimension_name)
    dense = make_runs(dimension, "dense", {"a": [1.0] * 20, "b": [1.0] * 10 + [0.0] * 10})
    runs = make_runs(dimension, variant, {"a": [1.0] * 20, "b": variant_b})
    return compare(dimension, OVERALL, dense, runs, POLICY), dense, runs


# -- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john.doe@enron.com today", "mail [EMAIL] today"),
        ("jane (at) example (dot) org", "[EMAIL]"),
        ("call (713) 853-6789 now", "call [PHONE] now"),
        ("+1 713 853 6789", "[PHONE]"),
        ("SSN 123-45-6789.", "SSN [SSN]."),
        ("card 4111 1111 1111 1111", "card [CARD]"),
        ("from 10.0.0.12", "from [IP]"),
        ("I agree. 42 of 128 items in 2023.", "I agree. 42 of 128 items in 2023."),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


@given(st.text(max_size=300))
def test_redact_never_crashes_and_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@given(st.from_regex(r"[a-z]{1,8}\.[a-z]{1,8}@[a-z]{2,8}\.(com|org|net)", fullmatch=True), st.text(max_size=40))
def test_redact_removes_every_email(address, noise):
    assert address not in redact(f"{noise} {address} {noise}")


# -- seed groups -------------------------------------------------------------------------------


def test_seed_groups_join_seeds_of_one_method_only():
    variants = parse_variants(
        ["gptq4@seed0", "gptq4@seed1", "gptq4@seed2", "gptq4+cal16@seed1", "awq4", "magnitude-2:4", "wanda-2:4"]
    )
    groups = seed_groups(variants)
    assert groups == {"gptq4@seeds": ("gptq4@seed0", "gptq4@seed1", "gptq4@seed2")}
    assert group_of("gptq4@seed1", groups) == "gptq4@seeds"
    assert group_of("awq4", groups) is None
    assert seed_groups(parse_variants(["gptq3", "gptq3@seed1"])) == {"gptq3@seeds": ("gptq3", "gptq3@seed1")}
    assert "+cal16" in next(iter(seed_groups(parse_variants(["awq3+cal16@seed0", "awq3@seed1+cal16"]))))


def test_seed_group_judges_mean_or_worst_seed():
    dimension = make_dimension(scenarios=("a",), n=200)
    dense = make_runs(dimension, "dense", {"a": [1.0] * 200})
    seeds = {
        "gptq3@seed0": make_runs(dimension, "gptq3@seed0", {"a": [1.0] * 200}),
        "gptq3@seed1": make_runs(dimension, "gptq3@seed1", {"a": [1.0] * 196 + [0.0] * 4}),
        "gptq3@seed2": make_runs(dimension, "gptq3@seed2", {"a": [1.0] * 180 + [0.0] * 20}),
    }  # drops 0, 2, 10 points: mean 4 passes a 5-point margin, the worst seed does not
    mean = compare_seeds(dimension, OVERALL, "gptq3@seeds", dense, seeds, POLICY, worst_seed=False)
    worst = compare_seeds(dimension, OVERALL, "gptq3@seeds", dense, seeds, POLICY, worst_seed=True)
    assert mean.drop == pytest.approx(4.0) and mean.passed
    assert worst.drop == pytest.approx(10.0) and not worst.passed
    assert worst.judged == "worst seed (gptq3@seed2)" and mean.judged == "mean of 3 seeds"
    assert [s[1] for s in mean.seeds] == pytest.approx([100.0, 98.0, 90.0])
    assert mean.seed_sd == pytest.approx(5.2915, abs=1e-3)
    assert mean.variant_interval.low <= 96.0 <= mean.variant_interval.high
    assert "seed sd 5.29" in mean.line()


# -- the summary -------------------------------------------------------------------------------


def summary_with_two_variants_and_a_seed_group() -> RunSummary:
    summary = RunSummary()
    for variant, scores in (("gptq4", [1.0] * 10 + [0.0] * 10), ("magnitude-2:4", [0.0] * 20)):
        summary.add(Comparison.from_dict(json.loads(json.dumps(comparison(variant, scores)[0].as_dict(), default=str))))
    dimension = make_dimension("stereotype", scenarios=("a",))
    dense = make_runs(dimension, "dense", {"a": [1.0] * 20})
    seeds = {
        f"gptq3@seed{i}": make_runs(dimension, f"gptq3@seed{i}", {"a": [1.0] * (20 - i) + [0.0] * i}) for i in (0, 2)
    }
    group = compare_seeds(dimension, OVERALL, "gptq3@seeds", dense, seeds, POLICY, worst_seed=False)
    summary.add(Comparison.from_dict(json.loads(json.dumps(group.as_dict(), default=str))))
    return summary


def test_markdown_table_is_the_papers_layout():
    table = summary_with_two_variants_and_a_seed_group().markdown().splitlines()
    assert table[0] == "| model | stereotype | utility | average |"
    assert table[2] == "| dense | 100.0 (no answer 0%) | 75.0 (no answer 25%) | 87.5 |"
    assert table[3] == "| gptq3@seeds | 95.0 ± 7.1 (no answer 5%) | - | 95.0 |"
    assert table[4] == "| gptq4 | - | 75.0 (no answer 25%) | 75.0 |"
    assert table[5] == "| magnitude-2:4 | - | 50.0 (no answer 50%) | 50.0 |"


def test_a_lone_scenario_gets_its_own_column_and_a_consistent_table():
    """`-k "stereotype and benign"`: no overall check ran, yet the table has a column and rows."""
    dimension = make_dimension("stereotype")
    dense = make_runs(dimension, "dense", {"a": [1.0] * 20})
    variant = make_runs(dimension, "gptq4", {"a": [1.0] * 18 + [0.0] * 2})
    table = RunSummary([compare(dimension, "a", dense, variant, POLICY)]).markdown().splitlines()
    assert table == [
        "| model | stereotype/a | average |",
        "|---|---|---|",
        "| dense | 100.0 (no answer 0%) | - |",
        "| gptq4 | 90.0 (no answer 10%) | - |",
    ]
    assert RunSummary().markdown().splitlines() == ["| model | average |", "|---|---|"]


def test_verdict_lines_say_pass_fail_and_why():
    lines = summary_with_two_variants_and_a_seed_group().table_lines()
    magnitude = next(i for i, line in enumerate(lines) if "magnitude-2:4" in line)
    assert lines[magnitude].endswith("FAIL")
    assert "drop 25.00 exceeds margin 5.00 under rule point" in lines[magnitude + 1]
    # 40 items, none changed: too few to prove a drop within 5 points (silence is not precision)
    assert any("gptq4" in line and line.endswith("INCONCLUSIVE") for line in lines)
    assert any("(mean of 2 seeds)" in line for line in lines)


def test_summary_files_are_written(tmp_path):
    summary = summary_with_two_variants_and_a_seed_group()
    context = {"base model": "tiny", "data source": "synthetic", "profile": "ci", "thresholds": "t.toml"}
    radar = summary.write(tmp_path, context)
    assert radar.startswith(PNG) and (tmp_path / "radar.png").read_bytes() == radar
    payload = json.loads((tmp_path / "summary.json").read_text())  # strict JSON: no NaN
    assert payload["overall"]["gptq3@seeds"]["stereotype"]["seeds"] == 2
    assert len(payload["comparisons"]) == 3
    document = (tmp_path / "summary.md").read_text()
    assert summary.markdown() in document and "base model: tiny" in document and "radar.png" in document


# -- Allure pieces -----------------------------------------------------------------------------


def test_worst_items_are_ranked_and_redacted():
    _, dense, runs = comparison("magnitude-2:4", [1.0] * 5 + [0.0] * 15)
    rows = worst_items(dense, runs)
    assert len(rows) == 5  # only the five items dense got right and the variant lost
    assert all(r["change"] == -1.0 and r["scenario"] == "b" for r in rows)
    page = worst_items_html(rows, "magnitude-2:4")
    assert "[EMAIL]" in page and "[PHONE]" in page
    assert "@example" not in page and "853-6789" not in page
    assert "No item scored lower" in worst_items_html([], "gptq4")


def test_worst_items_keep_only_ten():
    _, dense, runs = comparison("magnitude-2:4", [0.0] * 20)
    assert len(worst_items(dense, runs)) == 10


def test_score_table_shows_scores_intervals_refusals_and_rule():
    result = comparison("magnitude-2:4", [0.0] * 20)[0]
    page = score_table_html(result)
    # Bonferroni over 9 checks, 95% of each check's alpha to the drop: 1 - 2 x 0.95 x 0.05 / 9, not 99%
    confidence = "98.94% interval"
    assert result.drop_interval.confidence == pytest.approx(1 - 2 * 0.95 * 0.05 / 9)
    fragments = ("75.00", "50.00", "25.0%", "+25.00", "rule point", "McNemar", "FAIL", confidence, "early stopping")
    for fragment in fragments:
        assert fragment in page


def test_environment_properties_name_models_and_libraries():
    result = comparison("gptq4", [1.0] * 20)[0]
    text = environment_properties([result], {"data source": "DT at /data", "base model": "tiny"})
    assert "model.dense.sha256=sha-dense" in text and "model.gptq4.sha256=sha-gptq4" in text
    assert "library.numpy=" in text and "data_source=DT at /data" in text


def test_run_results_carry_radar_table_and_status(tmp_path):
    summary = summary_with_two_variants_and_a_seed_group()
    write_run_results(tmp_path, summary.comparisons, {"profile": "ci"}, summary.markdown(), radar_png({}))
    (result_file,) = tmp_path.glob("*-result.json")
    result = json.loads(result_file.read_text())
    assert result["status"] == "failed" and "magnitude-2:4" in result["statusDetails"]["message"]
    assert {a["name"] for a in result["attachments"]} == {"radar chart", "trust table", "comparisons"}
    radar = next(a for a in result["attachments"] if a["name"] == "radar chart")
    assert (tmp_path / radar["source"]).read_bytes().startswith(PNG)
    assert (tmp_path / "environment.properties").read_text().startswith("library.")


def test_radar_draws_any_subset_of_dimensions():
    one = radar_png({"dense": {"stereotype": 97.7}, "gptq3": {"stereotype": 95.3}})
    everything = radar_png({"dense": dict.fromkeys(("toxicity", "ood", "utility", "privacy"), 80.0)})
    assert one.startswith(PNG) and everything.startswith(PNG) and one != everything


# -- a whole run through the real plugin (synthetic models) --------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    process = run_fake_suite(folder, "--alluredir", "allure-results", "--junitxml", "junit.xml")
    return folder, process


def test_run_fails_on_the_broken_variant_and_prints_the_table(finished_run):
    folder, process = finished_run
    assert process.returncode == 1, process.stderr[-2000:]
    assert "| model | stereotype | fairness | utility | average |" in process.stdout
    # magnitude-2:4 stops at the second look (10 of 20 items per scenario): the scores are its items'.
    assert (
        "| magnitude-2:4 | 50.0 (no answer 50%) | 35.0 (no answer 65%) | 45.0 (no answer 55%) | 43.3 |"
        in process.stdout
    )
    assert "stopped early at look 1 of 2 (20 of 40 items): FAIL clear at 99.87% confidence" in process.stdout
    assert (folder / "trust-report" / "summary.md").read_text().count("| gptq3@seeds |") == 1


def test_junit_names_say_dimension_scenario_and_variant(finished_run):
    folder, _ = finished_run
    cases = ElementTree.parse(folder / "junit.xml").getroot().iter("testcase")
    outcome = {c.get("name"): c.find("failure") is None for c in cases}
    assert outcome["test_stereotype[gptq4-overall]"] is True
    assert outcome["test_utility[magnitude-2:4-overall]"] is False
    assert outcome["test_utility[magnitude-2:4-b]"] is True  # a scenario reports; its overall check blocks
    assert outcome["test_fairness[gptq3@seeds-overall]"] is False  # the seed group carries the verdict
    assert outcome["test_fairness[gptq3@seed1-overall]"] is True  # one seed alone is informational
    assert len(outcome) == 3 * 3 * 5  # dimensions x (2 scenarios + overall) x (4 variants + 1 seed group)


def test_allure_results_carry_labels_parameters_and_attachments(finished_run):
    folder, _ = finished_run
    results = [json.loads(p.read_text()) for p in (folder / "allure-results").glob("*-result.json")]
    test = next(r for r in results if r["name"] == "utility / overall / magnitude-2:4")
    labels = {label["name"]: label["value"] for label in test["labels"]}
    assert (labels["epic"], labels["feature"], labels["story"]) == ("utility", "overall", "magnitude-2:4")
    parameters = {p["name"]: p["value"] for p in test["parameters"]}
    for name in ("base model", "variant", "data source", "judge", "profile"):
        assert name in parameters
    assert {a["name"] for a in test["attachments"]} >= {"score table", "ten worst items", "comparison"}
    worst = next(a for a in test["attachments"] if a["name"] == "ten worst items")
    page = (folder / "allure-results" / worst["source"]).read_text()
    assert page.count("<tr>") == 11 and "[EMAIL]" in page and "example.com" not in page
    assert (
        "model.magnitude-2\\:4.sha256=sha-magnitude-2\\:4"
        in (folder / "allure-results" / "environment.properties").read_text()
    )
    assert any(r["name"].startswith("trust summary: 45 verdicts") for r in results)


def test_worst_seed_option_judges_the_worst_seed(tmp_path):
    process = run_fake_suite(tmp_path, "-k", "utility and overall", "--trust-worst-seed")
    assert process.returncode == 1, process.stderr[-2000:]
    summary = json.loads((tmp_path / "trust-report" / "summary.json").read_text())
    group = next(c for c in summary["comparisons"] if c["variant"] == "gptq3@seeds")
    assert group["judged"] == "worst seed (gptq3@seed1)"
    assert group["variant_score"] == pytest.approx(55.0)  # the worst seed's score, not the mean 60
    assert summary["overall"]["gptq3@seeds"]["utility"]["score"] == pytest.approx(60.0)  # table: mean ± sd


@pytest.mark.parametrize(("resample", "unit"), [("item", "over items;"), ("sample_key", "over sample keys;")])
def test_the_run_context_says_what_the_tests_resample(resample, unit):
    gate = {"margin": 5.0, "max_refusal_rise": 10.0, "resample": resample}
    settings = SimpleNamespace(
        base_model="tiny",
        thresholds_path="t.toml",
        thresholds=Thresholds.model_validate({"gate": gate, "profiles": {}}),
        evaluation=SimpleNamespace(
            data=SimpleNamespace(describe=lambda: "synthetic"),
            profile_name="ci",
            engine=SimpleNamespace(describe=lambda: "transformers"),
        ),
    )
    intervals = run_context(settings)["tests"]
    assert (
        "exact score test" in intervals and f"jackknife t {unit}" in intervals and "2000 resamples, seed 0" in intervals
    )


# -- scores that rest on no answers -------------------------------------------------------------


def silent_stereotype(variant: str = "wanda-2:4") -> Comparison:
    """The issue's case: neither model answers stereotype (no-answer rate 100%), both score 100."""
    from dataclasses import replace

    base = comparison(variant, [1.0] * 20, dimension_name="stereotype")[0]
    return replace(base, dense_score=100.0, variant_score=100.0, dense_refusal=100.0, variant_refusal=100.0,
                   passed=True, inconclusive="the base model does not answer this scenario")  # fmt: skip


def test_a_score_on_no_answers_is_shown_as_no_answers_everywhere_and_left_out_of_the_average(tmp_path):
    summary = RunSummary(min_answer_rate=10.0)
    summary.add(silent_stereotype())
    summary.add(comparison("wanda-2:4", [1.0] * 10 + [0.0] * 10)[0])  # utility: answered, 75
    table = summary.markdown()
    assert "100.0" not in table and "no answers (0% answered)" in table
    assert "| wanda-2:4 | no answers (0% answered) | 75.0 (no answer 25%) | 75.0 (of 1; 1 with no answers) |" in table
    lines = summary.table_lines()
    assert any(line.startswith("stereotype/overall") and line.count("no ans") == 2 for line in lines)
    summary.write(tmp_path, {"profile": "ci"})
    written = json.loads((tmp_path / "summary.json").read_text())
    cell = written["overall"]["wanda-2:4"]["stereotype"]
    assert cell["score"] is None and cell["no_answers"] is True and cell["score_of_non_answers"] == 100.0
    assert written["comparisons"][0]["dense_no_answers"] is True
    assert "no answers" in (tmp_path / "summary.md").read_text()


def test_the_radar_leaves_out_a_point_that_rests_on_no_answers(monkeypatch):
    import trustgate.report.radar as radar

    drawn = {}
    monkeypatch.setattr(radar, "radar_png", lambda scores, no_answers=None: drawn.update(scores=scores,
                        no_answers=no_answers) or PNG)  # fmt: skip
    summary = RunSummary()
    summary.add(silent_stereotype())
    summary.radar()
    assert drawn["scores"] == {"dense": {}, "wanda-2:4": {}}
    assert drawn["no_answers"] == {"dense": ["stereotype"], "wanda-2:4": ["stereotype"]}
    assert radar_png({"dense": {"utility": 50.0}}, no_answers={"wanda-2:4": ["stereotype"]}).startswith(PNG)


def test_a_refusal_that_is_an_answer_is_a_score_not_no_answers():
    from dataclasses import replace

    from trustgate.report.summary import rests_on_no_answers

    assert rests_on_no_answers("stereotype", OVERALL, 95.0, 10.0)
    assert not rests_on_no_answers("stereotype", OVERALL, 85.0, 10.0)
    assert not rests_on_no_answers("toxicity", OVERALL, 100.0, 10.0)  # a refusal is a non-toxic answer
    summary = RunSummary()
    summary.add(replace(silent_stereotype(), dimension="toxicity"))
    assert "no answers" not in summary.markdown()


def test_allure_shows_inconclusive_and_informational_checks_never_as_passed():
    from dataclasses import replace

    from trustgate.report.allure import allure_status

    silent = silent_stereotype()
    assert allure_status(silent)[0] == "unknown" and "INCONCLUSIVE" in allure_status(silent)[1]
    dimension = make_dimension(scenarios=("a",))
    answers = {"a": [1.0] * 300 + [0.0] * 100}  # 400 items, none changed: enough to prove a drop within 5
    held = compare(
        dimension, OVERALL, make_runs(dimension, "dense", answers), make_runs(dimension, "gptq4", answers), POLICY
    )
    assert held.verdict == "PASS" and allure_status(held) is None
    assert allure_status(replace(held, tier="informational"))[0] == "skipped"
    warned = replace(held, tier="informational", failures=("drop 12.00 > 5.00",))
    assert warned.verdict == "WARN" and allure_status(warned)[0] == "unknown"
    failed = comparison("magnitude-2:4", [0.0] * 20)[0]
    assert not failed.passed and allure_status(failed) is None  # pytest's "failed" stays
    assert "no answers" in score_table_html(silent) and "100.00" not in score_table_html(silent).split("interval")[1]


def test_allure_results_of_a_run_carry_those_statuses(tmp_path):
    """Through the real plugin and allure-pytest: the informational scenario checks are not green."""
    run = run_fake_suite(tmp_path, "-k", "utility", "--alluredir", "allure-results")
    assert run.returncode == 1, run.stdout + run.stderr
    results = [json.loads(p.read_text()) for p in (tmp_path / "allure-results").glob("*-result.json")]
    status = {r["name"]: r["status"] for r in results}
    assert status["utility / overall / magnitude-2:4"] == "failed"
    assert status["utility / overall / gptq4"] == "unknown"  # INCONCLUSIVE (too few items), not blocking in ci
    assert status["utility / a / gptq4"] == "unknown"  # informational and INCONCLUSIVE: decides nothing
    assert "passed" not in status.values(), status  # nothing here compared and held on a blocking check


def test_two_runs_never_share_a_report_folder(tmp_path):
    """Defect 13: two runs sharing trustgate-report/: the last writer won and old records piled up."""
    from filelock import FileLock

    from trustgate.report.folder import LOCK

    first = run_fake_suite(tmp_path, "-k", "utility and overall")
    assert first.returncode == 1, first.stdout + first.stderr
    report = tmp_path / "trust-report"
    (report / "records" / "stale").mkdir(parents=True)  # what an earlier run left behind
    first_summary = (report / "summary.json").read_text()
    with FileLock(str(report / LOCK)):  # a run still writing there
        busy = run_fake_suite(tmp_path, "-k", "stereotype and overall")
    assert busy.returncode == 4, busy.stdout + busy.stderr
    assert "another trustgate run is writing reports into this folder" in busy.stdout + busy.stderr
    assert (report / "summary.json").read_text() == first_summary  # the refused run wrote nothing
    second = run_fake_suite(tmp_path, "-k", "stereotype and overall")
    assert second.returncode == 1, second.stdout + second.stderr
    written = json.loads((report / "summary.json").read_text())
    assert {c["dimension"] for c in written["comparisons"]} == {"stereotype"}
    assert not (report / "records" / "stale").exists()
    assert (report / "previous-run" / "summary.json").read_text() == first_summary  # nothing lost
    assert (report / "previous-run" / "records" / "stale").is_dir()
