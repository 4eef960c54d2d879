"""Per-item records of a run, saved as JSONL: enough to re-score without a model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trustgate.dimensions.base import Item, Outcome


def item_to_dict(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "messages": [list(m) for m in item.messages],
        "target": item.target,
        "meta": dict(item.meta),
        "sample_key": item.sample_key,
    }


def item_from_dict(raw: dict[str, Any]) -> Item:
    return Item(
        id=raw["id"],
        messages=tuple((role, content) for role, content in raw["messages"]),
        target=raw.get("target"),
        meta=raw.get("meta", {}),
        sample_key=raw.get("sample_key", ""),
    )


def write_records(
    path: Path,
    header: dict[str, Any],
    items: Sequence[Item],
    responses: Sequence[Sequence[str]],
    outcomes: Sequence[Outcome],
) -> None:
    """First line: the run's header (dimension, scenario, model, settings); then one line per item."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".jsonl.partial")
    with open(staging, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"header": header}, ensure_ascii=False) + "\n")
        for item, item_responses, outcome in zip(items, responses, outcomes, strict=True):
            handle.write(
                json.dumps(
                    {
                        "item": item_to_dict(item),
                        "responses": list(item_responses),
                        "outcome": {**asdict(outcome), "columns": dict(outcome.columns)},
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    staging.replace(path)


def read_records(path: Path) -> tuple[dict[str, Any], list[Item], list[list[str]], list[dict[str, Any]]]:
    with open(path, encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    if not lines or "header" not in lines[0]:
        raise ValueError(f"{path}: not a trustgate records file (no header line)")
    body = lines[1:]
    return (
        lines[0]["header"],
        [item_from_dict(r["item"]) for r in body],
        [r["responses"] for r in body],
        [r["outcome"] for r in body],
    )


def record_files(folder: Path) -> Iterator[Path]:
    yield from sorted(folder.rglob("*.jsonl"))
