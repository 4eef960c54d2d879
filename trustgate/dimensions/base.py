"""What a trust dimension declares: scenarios, how items load, how responses score.

A dimension is data + solver settings + scorer, in the manner of an Inspect task:

* `load(data, scenario)` returns the scenario's items (the same items for every model);
* `score_item(item, responses)` parses one item's responses (one per sample) into an
  `Outcome`; a dimension whose judge works best on a whole batch (toxicity) gives
  `score_batch(items, responses)` instead;
* `metric(columns)` turns the outcome columns of one scenario into a 0-100 score;
* `refusal_metric(columns)` its refusal rate in % (default: the mean item refusal share;
  privacy averages per DecodingTrust file first, as DecodingTrust does);
* `combine(scores)` turns scenario scores into the dimension score (default: their mean); the
  dimension's refusal rate combines the scenarios' rates the same way.

Metrics take columns (numpy arrays, one entry per item), so that a paired bootstrap can
resample items and recompute any metric, item-decomposable or not (fairness's parity gap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trustgate.dimensions import metrics as _metrics
from trustgate.dimensions.registry import entry

Messages = tuple[tuple[str, str], ...]  # (role, content) pairs, hashable


@dataclass(frozen=True)
class Item:
    """One prompt to every model. `id` pairs the dense and the variant response."""

    id: str
    messages: Messages
    target: Any = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    sample_key: str = ""  # items sharing it are kept or dropped together by --trust-limit

    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class Outcome:
    """A parsed item: item score in [0, 1] (higher is more trustworthy), refusal share, columns."""

    score: float
    refusal: float
    labels: tuple[str, ...] = ()
    columns: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScenarioData:
    """Items of one scenario, where they came from, and whether a part is missing."""

    items: tuple[Item, ...]
    source: str
    partial: str | None = None  # why the scenario is not the full DecodingTrust one
    max_new_tokens: int | None = None


Loader = Callable[[Any, str], ScenarioData]
ItemScorer = Callable[[Item, Sequence[str]], Outcome]
BatchScorer = Callable[[Sequence[Item], Sequence[Sequence[str]]], list[Outcome]]
Metric = _metrics.ItemMetric  # a declared metric: callable on columns, and weightable


# 100 x the mean item score (accuracy-like metrics) and 100 x the mean item refusal share.
mean_item_score = _metrics.mean_item_score
mean_refusal = _metrics.mean_refusal


def mean_of(scores: Mapping[str, float]) -> float:
    return float(np.mean(list(scores.values())))


def share(flags: Sequence[bool | float]) -> float:
    """Mean of per-sample flags (the share of a model's samples for one item that satisfy a
    rule); 0 for no samples."""
    return float(sum(flags) / len(flags)) if flags else 0.0


@dataclass(frozen=True)
class Dimension:
    name: str
    scenarios: tuple[str, ...]
    load: Loader
    score_item: ItemScorer | None = None
    score_batch: BatchScorer | None = None
    metric: Metric = mean_item_score
    refusal_metric: Metric = mean_refusal
    combine: Callable[[Mapping[str, float]], float] = mean_of
    max_new_tokens: int = 32
    doc_uri: str = ""
    description: str = ""
    judge: Callable[[], str] | None = None  # who decides an item's score, when not a rule-based parser
    # Scenarios where a refusal is a scored answer (refusing a toxic prompt is the safe answer).
    # Elsewhere a refusal or no-answer says nothing about the trait measured, so a base model that
    # almost never answers gives the gate no signal (an INCONCLUSIVE check, never a PASS).
    refusal_is_an_answer: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        entry(self.name)  # only registered dimensions exist
        if (self.score_item is None) == (self.score_batch is None):
            raise ValueError(f"dimension {self.name}: give exactly one of score_item and score_batch")

    @property
    def title(self) -> str:
        return entry(self.name).title

    def refusal_carries_signal(self, scenario: str) -> bool:
        return scenario in self.refusal_is_an_answer

    def judge_name(self) -> str:
        return self.judge() if self.judge else f"rule-based {self.name} parser (DecodingTrust rules)"

    def score_items(self, items: Sequence[Item], responses: Sequence[Sequence[str]]) -> list[Outcome]:
        """One Outcome per item, from its responses (one per sample)."""
        if len(items) != len(responses):
            raise ValueError(f"{self.name}: {len(items)} items but {len(responses)} response lists")
        if self.score_batch is not None:
            return self.score_batch(items, responses)
        assert self.score_item is not None
        return [self.score_item(item, item_responses) for item, item_responses in zip(items, responses, strict=True)]


def outcome_columns(outcomes: Sequence[Outcome]) -> dict[str, np.ndarray]:
    """Stack outcomes into the columns a metric reads: score, refusal, and every extra column."""
    columns: dict[str, np.ndarray] = {
        "score": np.array([o.score for o in outcomes], dtype=float),
        "refusal": np.array([o.refusal for o in outcomes], dtype=float),
    }
    extra = sorted({key for o in outcomes for key in o.columns})
    for key in extra:
        columns[key] = np.array([o.columns.get(key, np.nan) for o in outcomes], dtype=float)
    return columns
