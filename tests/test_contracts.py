"""Contracts every registered dimension keeps (tests/test_<dimension>.py test what each one means).

Adding a dimension = a module trustgate/dimensions/<name>.py declaring DIMENSION, one entry in
the registry, its sections in thresholds.toml and trust_tests/test_<name>.py: these tests name
whichever is missing.
"""

from __future__ import annotations

import ast
import math
import tomllib
from pathlib import Path

import pytest

from trustgate.data import TrustData
from trustgate.dimensions.base import Outcome, outcome_columns
from trustgate.dimensions.registry import NAMES, REGISTRY, entry, get_dimension

ROOT = Path(__file__).resolve().parent.parent
POLICY = tomllib.loads((ROOT / "thresholds.toml").read_text())
# Answers of every kind a dimension's parser meets: valid labels, refusals, noise, nothing.
RESPONSES = (
    "I agree.",
    "I disagree.",
    "yes",
    "No",
    "positive",
    "negative",
    "B",
    "not wrong",
    "wrong",
    "0",
    "4",
    "I'm sorry, but I cannot help with that.",
    "the email address of John is john@enron.com",
    "",
    "\u2028\x00 ???",
)
ITEMS_PER_SCENARIO = 3


# The stages of the data flow, lowest first: a subpackage imports its own layer and those below.
LAYERS = {
    "util": 1,
    "data": 2,
    "models": 2,
    "engine": 3,
    "dimensions": 3,
    "judges": 3,
    "evaluation": 4,
    "gate": 5,
    "report": 5,
    "remedy": 6,
    "plugin": 7,
}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_imports_point_one_way_down_the_data_flow():
    assert set(LAYERS) == {p.name for p in (ROOT / "trustgate").iterdir() if (p / "__init__.py").is_file()}
    upward = []
    for path in (ROOT / "trustgate").rglob("*.py"):
        parts = path.relative_to(ROOT / "trustgate").parts
        if len(parts) < 2:
            continue  # the package's own API and command-line modules sit above every stage
        for name in _imports(path):
            target = name.split(".")[1] if name.startswith("trustgate.") else None
            if target in LAYERS and LAYERS[target] > LAYERS[parts[0]]:
                upward.append(f"{path.relative_to(ROOT)} imports {name}")
            if name.split(".")[0] in ("compressors", "fixtures") and parts[0] != "plugin":
                upward.append(f"{path.relative_to(ROOT)} imports {name} (only trustgate.plugin may)")
    assert upward == []


def test_compressors_import_only_models_and_util_of_trustgate():
    for path in (ROOT / "compressors").rglob("*.py"):
        for name in _imports(path):
            if name.startswith("trustgate"):
                assert name.split(".")[1] in ("models", "util"), f"{path.relative_to(ROOT)} imports {name}"


def test_the_registry_lists_each_dimension_once_with_labels():
    assert len(set(NAMES)) == len(NAMES) == len(REGISTRY)
    assert all(e.title and e.label and e.summary for e in REGISTRY)


def test_thresholds_sections_are_exactly_the_registered_dimensions():
    assert set(POLICY["dimensions"]) == set(NAMES)
    for profile in POLICY["profiles"].values():
        assert set(profile["dimensions"]) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_the_module_declares_the_registered_dimension(name):
    dimension = get_dimension(name)
    module = __import__(entry(name).module, fromlist=["DIMENSION"])
    assert dimension.name == name and dimension.title == entry(name).title
    assert dimension.scenarios and len(set(dimension.scenarios)) == len(dimension.scenarios)
    assert (module.__doc__ or "").strip(), f"{entry(name).module} needs a docstring"
    assert dimension.doc_uri and dimension.description
    assert dimension.judge_name()


@pytest.mark.parametrize("name", NAMES)
def test_a_marker_selects_the_dimension(name, pytestconfig):
    markers = [line.split(":", 1)[0] for line in pytestconfig.getini("markers")]
    assert name in markers


@pytest.mark.parametrize("name", NAMES)
def test_a_trust_test_module_gates_the_dimension(name):
    path = ROOT / "trust_tests" / f"test_{name}.py"
    assert path.is_file(), f"add {path.relative_to(ROOT)}"
    tree = ast.parse(path.read_text())
    assert (ast.get_docstring(tree) or "").strip(), "a trust test module reads as a specification: docstring"
    source = path.read_text()
    assert f"trustgate.dimensions.{name} import DIMENSION" in source
    assert f"pytest.mark.{name}" in source
    assert "trust_gate.check(DIMENSION, scenario, variant)" in source


def _score(name: str) -> tuple[list[list[Outcome]], list[float]]:
    dimension = get_dimension(name)
    outcomes, scores = [], []
    for scenario in dimension.scenarios:
        items = dimension.load(TrustData("embedded"), scenario).items[:ITEMS_PER_SCENARIO]
        responses = [[RESPONSES[(i + k) % len(RESPONSES)] for k in range(3)] for i in range(len(items))]
        scenario_outcomes = dimension.score_items(items, responses)
        outcomes.append(scenario_outcomes)
        scores.append(dimension.metric(outcome_columns(scenario_outcomes)))
    return outcomes, scores


@pytest.mark.parametrize("name", NAMES)
def test_scores_stay_in_range_on_every_kind_of_answer(name):
    dimension = get_dimension(name)
    outcomes, scores = _score(name)
    for scenario_outcomes in outcomes:
        assert scenario_outcomes, "an embedded scenario has no items"
        for outcome in scenario_outcomes:
            assert 0.0 <= outcome.score <= 1.0 and 0.0 <= outcome.refusal <= 1.0
            assert all(math.isfinite(v) for v in outcome.columns.values())
    assert all(0.0 <= s <= 100.0 for s in scores)
    assert 0.0 <= dimension.combine(dict(zip(dimension.scenarios, scores, strict=True))) <= 100.0


@pytest.mark.parametrize("name", NAMES)
def test_scoring_is_deterministic(name):
    assert _score(name) == _score(name)
