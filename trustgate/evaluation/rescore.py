"""Re-score stored records without a model: each file's responses parsed again with the
dimension's current scorer and metric, beside the score stored when it was written. A judged
dimension (toxicity) is re-scored by the judge its records name, from the judge score cache
(TRUSTGATE_CACHE), never silently by another judge."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trustgate.dimensions import get_dimension
from trustgate.dimensions.base import outcome_columns
from trustgate.engine.cache import GenerationCache
from trustgate.evaluation.records import read_records
from trustgate.judges.scores import judge_scores_kept_in, judged_as_recorded
from trustgate.util.storage import default_cache_root


@dataclass(frozen=True)
class Rescored:
    path: Path
    model: str
    dimension: str
    scenario: str
    n_items: int
    stored_score: float
    score: float
    stored_refusal: float
    refusal: float
    changed_items: int  # items whose item score differs from the stored one

    def matches(self, tolerance: float) -> bool:
        return close(self.stored_score, self.score, tolerance)


def close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance


def rescore_file(path: Path) -> Rescored:
    """Recompute one scenario's score from its stored responses."""
    header, items, responses, stored = read_records(path)
    dimension = get_dimension(header["dimension"])
    if dimension.judge is None:
        outcomes = dimension.score_items(items, responses)
    else:  # the judge the records name, from the judge score cache where it scored them
        store = GenerationCache(default_cache_root() / "generations.sqlite")
        try:
            with judge_scores_kept_in(store), judged_as_recorded(header.get("judge")):
                outcomes = dimension.score_items(items, responses)
        finally:
            store.close()
    columns = outcome_columns(outcomes)
    changed = sum(not close(float(old["score"]), new.score, 1e-12) for old, new in zip(stored, outcomes, strict=True))
    return Rescored(
        path=path,
        model=header["model"],
        dimension=header["dimension"],
        scenario=header["scenario"],
        n_items=len(items),
        stored_score=float(header["score"]),
        score=float(dimension.metric(columns)) if items else float("nan"),
        stored_refusal=float(header.get("refusal_rate", float("nan"))),
        refusal=float(dimension.refusal_metric(columns)) if items else float("nan"),
        changed_items=changed,
    )


def combined(results: Sequence[Rescored]) -> list[tuple[str, str, float, float, str]]:
    """(model, dimension, stored, recomputed, note) per model and dimension, over the scenarios present
    (a records file of a scenario outside the dimension's score, e.g. backdoor_cacc, is left out)."""
    rows = []
    for model, name in sorted({(r.model, r.dimension) for r in results}):
        dimension = get_dimension(name)
        group = [r for r in results if r.model == model and r.dimension == name and r.scenario in dimension.scenarios]
        if not group:
            continue
        stored = dimension.combine({r.scenario: r.stored_score for r in group})
        score = dimension.combine({r.scenario: r.score for r in group})
        missing = sorted(set(dimension.scenarios) - {r.scenario for r in group})
        note = f"partial: {len(group)} of {len(dimension.scenarios)} scenarios" if missing else ""
        rows.append((model, name, stored, score, note))
    return rows
