"""Synthetic scenario runs for tests of the gate and the reports: no model, known answers.

A model's behaviour is given as a 0/1 (or fractional) item score list per scenario; responses
are made up to match, and a few carry personal data so redaction can be checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from trustgate.dimensions.base import Dimension, Item, Outcome, ScenarioData, outcome_columns
from trustgate.engine import Decoding
from trustgate.evaluation.evaluator import ScenarioRun
from trustgate.models import ModelHandle

ROOT = Path(__file__).resolve().parent.parent
PII_PROMPT = "Write to jane.doe@example.com or call (713) 853-6789 about statement {index}."


def _score_item(item: Item, responses: Sequence[str]) -> Outcome:
    correct = [r.startswith("correct") for r in responses]
    refused = [r.startswith("I cannot") for r in responses]
    return Outcome(score=float(np.mean(correct)), refusal=float(np.mean(refused)))


def make_items(scenario: str, n: int) -> tuple[Item, ...]:
    return tuple(
        Item(id=f"{scenario}-{i}", messages=(("system", f"scenario {scenario}"), ("user", PII_PROMPT.format(index=i))))
        for i in range(n)
    )


def make_dimension(name: str = "utility", scenarios: tuple[str, ...] = ("a", "b"), n: int = 20) -> Dimension:
    def load(_data: object, scenario: str) -> ScenarioData:
        return ScenarioData(items=make_items(scenario, n), source="synthetic items")

    return Dimension(name=name, scenarios=scenarios, load=load, score_item=_score_item)


def make_run(dimension: Dimension, scenario: str, model: str, scores: Sequence[float]) -> ScenarioRun:
    items = make_items(scenario, len(scores))
    responses = tuple(
        (f"correct answer, mail me at {model}@example.org",) if s >= 0.5 else ("I cannot answer that.",) for s in scores
    )
    outcomes = tuple(dimension.score_items(items, responses))
    # Fractional scores are kept as given; responses only mirror them.
    outcomes = tuple(Outcome(score=float(s), refusal=o.refusal) for s, o in zip(scores, outcomes, strict=True))
    columns = outcome_columns(outcomes)
    return ScenarioRun(
        dimension=dimension.name,
        scenario=scenario,
        model=model,
        fingerprint=f"sha-{model}",
        items=items,
        responses=responses,
        outcomes=outcomes,
        score=dimension.metric(columns),
        source="synthetic items",
        partial=None,
        decoding=Decoding(max_new_tokens=8),
        columns=columns,
    )


def make_runs(dimension: Dimension, model: str, scores: Mapping[str, Sequence[float]]) -> dict[str, ScenarioRun]:
    return {scenario: make_run(dimension, scenario, model, s) for scenario, s in scores.items()}


def handle(name: str) -> ModelHandle:
    return ModelHandle(name=name, path=Path("/nonexistent") / name, fingerprint=f"sha-{name}")


class FakeEvaluator:
    """What GateCheck asks an Evaluator, on a dimension's own items (no data folder, no model).

    A synthetic item is its own sample key, so a look of `keys` keys is the first `keys` items;
    a subclass gives `run`, the scenario run of a model on such a prefix.
    """

    leaves_out: frozenset[str] = frozenset()  # scenarios the profile does not run

    def left_out(self, dimension: Dimension, scenario: str) -> bool:
        return scenario in self.leaves_out

    def scenario_data(self, dimension: Dimension, scenario: str) -> ScenarioData:
        return dimension.load(None, scenario)

    def key_count(self, dimension: Dimension, scenario: str) -> int:
        return len(self.scenario_data(dimension, scenario).items)

    def items_at(self, dimension: Dimension, scenario: str, keys: int | None = None) -> tuple[Item, ...]:
        return self.scenario_data(dimension, scenario).items[:keys]

    def prepare(self, dimension: Dimension, scenarios, model: ModelHandle, keys=None) -> None:
        """Nothing to generate ahead: `run` makes its outcomes."""

    def run(self, dimension: Dimension, scenario: str, model: ModelHandle, keys: int | None = None) -> ScenarioRun:
        raise NotImplementedError


# -- a whole trustgate run on synthetic models, through the real plugin, in a subprocess ----------

FAKE_CONFTEST = """
import pytest

from tests.synthetic import FakeEvaluator, handle, make_run

pytest_plugins = ["fixtures.models", "fixtures.gate"]  # the plugin itself is the entry point `trustgate`

# Item scores per model and scenario (20 items each): gptq4 loses one item, magnitude-2:4 many,
# the two gptq3 seeds two and six.
GOOD, HALF = [1.0] * 20, [1.0] * 10 + [0.0] * 10
BEHAVIOUR = {
    "dense": {"a": GOOD, "b": HALF},
    "gptq4": {"a": GOOD, "b": [1.0] * 9 + [0.0] * 11},
    "magnitude-2:4": {"a": [1.0] * 12 + [0.0] * 8, "b": [0.0] * 20},
    "gptq3@seed0": {"a": [1.0] * 18 + [0.0] * 2, "b": HALF},
    "gptq3@seed1": {"a": [1.0] * 14 + [0.0] * 6, "b": HALF},
}


class BehaviourEvaluator(FakeEvaluator):
    def run(self, dimension, scenario, model, keys=None):
        scores = list(BEHAVIOUR[model.name][scenario])[:keys]
        if model.name not in ("dense", "gptq4"):  # some variants lose more on some dimensions: a distinct radar
            for index in range({"stereotype": 0, "utility": 1, "fairness": 3}[dimension.name]):
                scores[index] = 0.0
        return make_run(dimension, scenario, model.name, scores)


@pytest.fixture(scope="session")
def evaluator():
    return BehaviourEvaluator()


@pytest.fixture(scope="session")
def base_model():
    return handle("dense")


@pytest.fixture(scope="session")
def compressed_models():
    return handle
"""

FAKE_TEST = """
from tests.synthetic import make_dimension

DIMENSION = make_dimension("{name}", scenarios=("a", "b"))


def test_{name}(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
"""

FAKE_VARIANTS = ("gptq4", "magnitude-2:4", "gptq3@seed0", "gptq3@seed1")


def run_fake_suite(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Run three synthetic dimensions through the real plugin; returns the finished pytest process."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conftest.py").write_text(FAKE_CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    for name in ("stereotype", "utility", "fairness"):
        (folder / f"test_{name}.py").write_text(FAKE_TEST.format(name=name))
    models = [arg for variant in FAKE_VARIANTS for arg in ("--model", variant)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TRUSTGATE_CACHE": str(folder / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", *models, "--trust-report", "trust-report", *args],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
