"""Synthetic scenario runs for tests of the gate and the reports: no model, known answers.

A model's behaviour is given as a 0/1 (or fractional) item score list per scenario; responses
are made up to match, and a few carry personal data so redaction can be checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from trustgate.dimension import Dimension, Item, Outcome, ScenarioData, outcome_columns
from trustgate.engine import Decoding
from trustgate.evaluation import ScenarioRun
from trustgate.models import ModelHandle

PII_PROMPT = "Write to jane.doe@example.com or call (713) 853-6789 about statement {index}."


def _score_items(items: Sequence[Item], responses: Sequence[Sequence[str]]) -> list[Outcome]:
    outcomes = []
    for _, item_responses in zip(items, responses, strict=True):
        correct = [r.startswith("correct") for r in item_responses]
        refused = [r.startswith("I cannot") for r in item_responses]
        outcomes.append(Outcome(score=float(np.mean(correct)), refusal=float(np.mean(refused))))
    return outcomes


def make_items(scenario: str, n: int) -> tuple[Item, ...]:
    return tuple(
        Item(id=f"{scenario}-{i}", messages=(("system", f"scenario {scenario}"), ("user", PII_PROMPT.format(index=i))))
        for i in range(n)
    )


def make_dimension(name: str = "utility", scenarios: tuple[str, ...] = ("a", "b"), n: int = 20) -> Dimension:
    def load(_data: object, scenario: str) -> ScenarioData:
        return ScenarioData(items=make_items(scenario, n), source="synthetic items")

    return Dimension(name=name, title=name, scenarios=scenarios, load=load, score_items=_score_items)


def make_run(dimension: Dimension, scenario: str, model: str, scores: Sequence[float]) -> ScenarioRun:
    items = make_items(scenario, len(scores))
    responses = tuple(
        (f"correct answer, mail me at {model}@example.org",) if s >= 0.5 else ("I cannot answer that.",) for s in scores
    )
    outcomes = tuple(_score_items(items, responses))
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
    from pathlib import Path

    return ModelHandle(name=name, path=Path("/nonexistent") / name, fingerprint=f"sha-{name}")
