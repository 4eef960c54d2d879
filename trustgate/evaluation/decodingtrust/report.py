"""Score paired generation files with trustgate's own scorers and write what the command promises:
records per scenario, DecodingTrust-style codes per file, summary.json and the printed table."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustgate.dimensions import get_dimension
from trustgate.dimensions import stereotype as stereotype_dimension
from trustgate.dimensions.base import Dimension, Outcome, outcome_columns
from trustgate.dimensions.registry import OVERALL
from trustgate.evaluation.decodingtrust.pairing import Paired, Pairing
from trustgate.evaluation.records import write_records

Codes = Callable[[Paired, Sequence[Outcome]], Any]


@dataclass(frozen=True)
class Row:
    """One scenario's (or, as scenario "overall", one dimension's) result."""

    dimension: str
    scenario: str
    files: int
    items: int
    score: float
    refusal_rate: float
    published_score: float | None = None  # DecodingTrust's rounded form, where it rounds
    published_refusal_rate: float | None = None
    partial: str | None = None
    requests_checked: int = 0  # stored requests compared whole, all equal: a file with one that differs is an error


@dataclass
class Scored:
    """Everything the command found for one dimension."""

    dimension: str
    rows: list[Row] = field(default_factory=list)
    codes: dict[str, Any] = field(default_factory=dict)  # dt_file -> codes
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # dt_file -> per-file result
    remarks: list[str] = field(default_factory=list)


def _published(dimension: Dimension, columns: dict[str, np.ndarray]) -> tuple[float | None, float | None]:
    if dimension.name != "stereotype":
        return None, None
    return stereotype_dimension.published_score(columns), stereotype_dimension.published_refusal(columns)


def _scenario_row(
    dimension: Dimension, scenario: str, groups: list[Paired], outcomes: list[Outcome], partial: list[str]
) -> Row:
    columns = outcome_columns(outcomes)
    published, published_refusal = _published(dimension, columns)
    return Row(
        dimension=dimension.name,
        scenario=scenario,
        files=len(groups),
        items=len(outcomes),
        score=float(dimension.metric(columns)),
        refusal_rate=float(dimension.refusal_metric(columns)),
        published_score=published,
        published_refusal_rate=published_refusal,
        partial="; ".join(partial) if partial else None,
        requests_checked=sum(g.requests_checked for g in groups),
    )


def _overall(dimension: Dimension, rows: list[Row], pairing: Pairing) -> Row:
    scored = [r for r in rows if r.scenario in dimension.scenarios]
    missing = [s for s in dimension.scenarios if s not in {r.scenario for r in scored}]
    notes = [f"{len(missing)} of {len(dimension.scenarios)} scenarios without generations"] if missing else []
    notes += [note for s in missing for note in pairing.partial.get(s, []) if "left out" in note][:3]
    notes += [f"{r.scenario} partial" for r in scored if r.partial]
    published = [r.published_score for r in scored]
    complete = not missing and all(p is not None for p in published)
    refusals = [r.published_refusal_rate for r in scored]
    return Row(
        dimension=dimension.name,
        scenario=OVERALL,
        files=sum(r.files for r in scored),
        items=sum(r.items for r in scored),
        score=float(dimension.combine({r.scenario: r.score for r in scored})) if scored else math.nan,
        refusal_rate=float(dimension.combine({r.scenario: r.refusal_rate for r in scored})) if scored else math.nan,
        published_score=float(np.mean(published)) if complete else None,
        published_refusal_rate=float(np.mean(refusals)) if complete and None not in refusals else None,
        partial="; ".join(notes) or None,
        requests_checked=sum(r.requests_checked for r in scored),
    )


def _header(model: str, row: Row, files: list[str]) -> dict[str, Any]:
    return {
        "dimension": row.dimension,
        "scenario": row.scenario,
        "model": model,
        "fingerprint": f"decodingtrust:{model}",
        "source": f"DecodingTrust stored generations ({row.files} files)",
        "partial": row.partial,
        "score": row.score,
        "refusal_rate": row.refusal_rate,
        "decodingtrust": {"files": files},
    }


def score_pairing(pairing: Pairing, codes: Codes, model: str, records_dir: Path) -> Scored:
    """Score every paired file, write one records file per scenario, collect the codes."""
    dimension = get_dimension(pairing.dimension)
    scored = Scored(pairing.dimension, remarks=list(pairing.remarks))
    by_scenario: dict[str, list[tuple[Paired, list[Outcome]]]] = {}
    for group in pairing.groups:
        outcomes = dimension.score_items(group.items, group.responses)
        by_scenario.setdefault(group.scenario, []).append((group, outcomes))
        scored.codes[group.dt_file] = codes(group, outcomes)
        columns = outcome_columns(outcomes)
        scored.files[group.dt_file] = {
            "scenario": group.scenario,
            "items": len(outcomes),
            "score": float(dimension.metric(columns)),
            "refusal_rate": float(dimension.refusal_metric(columns)),
            "requests_checked": group.requests_checked,
            "request_mismatches": 0,  # pairing stops at a file with any
            "dt_task": group.dt_task,
            "in_decodingtrust_score": group.scenario in dimension.scenarios,
        }
    order = [s for s in (*dimension.scenarios, *sorted(by_scenario)) if s in by_scenario]
    for scenario in dict.fromkeys(order):
        groups = [g for g, _ in by_scenario[scenario]]
        outcomes = [o for _, outs in by_scenario[scenario] for o in outs]
        partial = [*pairing.partial.get(scenario, []), *(g.partial for g in groups if g.partial)]
        row = _scenario_row(dimension, scenario, groups, outcomes, partial)
        scored.rows.append(row)
        items = [i for g in groups for i in g.items]
        responses = [r for g in groups for r in g.responses]
        header = _header(model, row, [g.dt_file for g in groups])
        write_records(records_dir / dimension.name / f"{scenario}.jsonl", header, items, responses, outcomes)
    scored.rows.append(_overall(dimension, scored.rows, pairing))
    return scored


def write_outputs(out: Path, model: str, data_dir: Path, results: Sequence[Scored]) -> dict[str, Any]:
    """OUT/codes.json and OUT/summary.json; returns the summary."""
    (out / "codes.json").write_text(json.dumps({r.dimension: r.codes for r in results}, indent=1) + "\n")
    summary = {
        "model": model,
        "data_dir": str(data_dir),
        "dimensions": {
            r.dimension: {
                "rows": [asdict(row) for row in r.rows],
                "files": r.files,
                "remarks": r.remarks,
            }
            for r in results
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _number(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None or math.isnan(value) else f"{value:>{width}.4f}"


def table(results: Sequence[Scored]) -> str:
    """The printed table: unrounded score, DecodingTrust's rounded form where it rounds, refusal rate."""
    lines = [f"{'dimension/scenario':<36} {'files':>5} {'items':>6} {'score':>9} {'DT form':>9} {'refusal%':>9}  note"]
    notes = []
    for result in results:
        for row in result.rows:
            flag = "partial" if row.partial else ""
            if row.requests_checked:
                flag += f" requests: {row.requests_checked} compared, 0 differ"
            lines.append(
                f"{row.dimension + '/' + row.scenario:<36} {row.files:>5} {row.items:>6} {_number(row.score, 9)} "
                f"{_number(row.published_score, 9)} {_number(row.refusal_rate, 9)}  {flag.strip()}"
            )
            if row.partial:
                notes.append(f"{row.dimension}/{row.scenario} partial: {row.partial}")
        notes += [f"{result.dimension}: {remark}" for remark in result.remarks]
        notes += _requests_per_file(result)
    return "\n".join(lines + (["", *notes] if notes else []))


def _requests_per_file(result: Scored) -> list[str]:
    """One line per dimension: how many stored requests each file had compared (none differ, or
    the pairing would have stopped at the file), e.g. "872 in 3 files"."""
    counts = Counter(f["requests_checked"] for f in result.files.values())
    if not any(counts):
        return [f"{result.dimension}: no stored request to compare (none kept, or the items are built from them)"]
    parts = ", ".join(f"{n} in {files} file{'s' * (files > 1)}" for n, files in sorted(counts.items(), reverse=True))
    return [f"{result.dimension}: stored requests compared whole per file: {parts}; 0 differ in every file"]
