"""Re-scoring stored records without a model, and the dimension registry it relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustgate.data import TrustData
from trustgate.dimensions import all_dimensions, get_dimension
from trustgate.dimensions.base import outcome_columns
from trustgate.evaluation.records import write_records
from trustgate.rescore import main, rescore_file


def test_registry_finds_every_module_with_a_dimension():
    dimensions = all_dimensions()
    assert {"fairness", "adv_robustness", "utility", "stereotype"} <= set(dimensions)
    assert all(name == dimension.name for name, dimension in dimensions.items())
    with pytest.raises(KeyError, match="known"):
        get_dimension("no_such_dimension")


def _write_run(folder: Path, dimension_name: str, scenario: str, responses: list[list[str]], score=None) -> Path:
    dimension = get_dimension(dimension_name)
    items = dimension.load(TrustData("embedded"), scenario).items[: len(responses)]
    outcomes = dimension.score_items(items, responses)
    columns = outcome_columns(outcomes)
    header = {
        "dimension": dimension_name,
        "scenario": scenario,
        "model": "dense",
        "score": dimension.metric(columns) if score is None else score,
        "refusal_rate": 100.0 * float(columns["refusal"].mean()),
    }
    path = folder / "dense" / dimension_name / f"{scenario}.jsonl"
    write_records(path, header, items, responses, outcomes)
    return path


def test_rescore_reproduces_stored_scores(tmp_path, capsys):
    fair = _write_run(tmp_path, "fairness", "adult_0shot_test_br0.5", [["Yes"], ["No"], ["yes and no"], ["?"]] * 3)
    _write_run(tmp_path, "utility", "mmlu_5shot", [["A"], ["B"], ["C"], ["D"], ["none"]])
    _write_run(tmp_path, "adv_robustness", "sst2", [["positive"], ["negative"], ["neutral"]])
    result = rescore_file(fair)
    assert result.score == pytest.approx(result.stored_score, abs=1e-12)
    assert result.changed_items == 0
    assert main([str(tmp_path), "--check"]) == 0
    out = capsys.readouterr().out
    assert "fairness/adult_0shot_test_br0.5" in out and "partial: 1 of 11 scenarios" in out
    assert "3 scenario files re-scored, 0 differ" in out


def test_check_flags_a_stored_score_that_does_not_match(tmp_path, capsys):
    _write_run(tmp_path, "utility", "mmlu_5shot", [["A"], ["B"]], score=99.0)
    assert main([str(tmp_path)]) == 0  # without --check a difference is reported, not failed
    assert main([str(tmp_path), "--check"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_unknown_dimension_or_bad_folder_exits_2(tmp_path):
    path = _write_run(tmp_path, "utility", "mmlu_5shot", [["A"]])
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["header"]["dimension"] = "telepathy"
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert main([str(tmp_path)]) == 2
    assert main([str(tmp_path / "nowhere")]) == 2
