"""The pool: per-item outcome columns of one model's runs (and a paired variant's), no text."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trustgate.dimensions import get_dimension
from trustgate.dimensions.metrics import as_item_metric
from trustgate.dimensions.registry import NAMES

EXTRACT_FORMAT = "trustgate-calibration-pool/1"
DEFAULT_EXTRACT = Path(__file__).resolve().parent.parent / "data" / "embedded_ci_pool.json.gz"


@dataclass
class Pool:
    dimension: str
    scenario: str
    structure: dict[str, np.ndarray]  # design columns the metric groups by (cell, sub-task, ...)
    dense: dict[str, np.ndarray]  # outcome columns: score, refusal, the metric's values
    variant: dict[str, np.ndarray] | None
    cluster: np.ndarray  # sample key index per item
    dense_model: str = "dense"
    variant_model: str | None = None
    provenance: str = ""

    @property
    def n(self) -> int:
        return len(self.cluster)


def kept_columns(dimension_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(design columns, outcome columns) the dimension's declared metrics read."""
    dimension = get_dimension(dimension_name)
    metrics = [as_item_metric(dimension.metric), as_item_metric(dimension.refusal_metric)]
    design = tuple(dict.fromkeys(c for m in metrics for c in m.design_columns))
    values = tuple(dict.fromkeys(("score", "refusal", *(c for m in metrics for c in m.value_columns))))
    return design, values


def _columns(outcomes: Sequence) -> dict[str, np.ndarray]:
    columns = {
        "score": np.array([o.score for o in outcomes], float),
        "refusal": np.array([o.refusal for o in outcomes], float),
    }
    for key in sorted({k for o in outcomes for k in o.columns}):
        columns[key] = np.array([float(o.columns.get(key, np.nan)) for o in outcomes])
    return columns


def pools_from_records(folders: Sequence[Path], dense: str, variant: str | None) -> list[Pool]:
    """Pools from trustgate records (records/<model>/<dimension>/<scenario>.jsonl)."""
    from trustgate.evaluation.records import read_records, record_files

    runs: dict[tuple[str, str, str], tuple[list[str], list[str], dict[str, np.ndarray]]] = {}
    for folder in folders:
        for path in record_files(Path(folder)):
            if path.name.endswith(".partial"):
                continue
            header, items, _responses, outcomes = read_records(path)
            if header.get("dimension") not in NAMES or not items:
                continue
            key = (header["model"], header["dimension"], header["scenario"])
            runs[key] = ([i.id for i in items], [i.sample_key or i.id for i in items], _columns(outcomes))
    if not any(model == dense for model, _, _ in runs):
        raise SystemExit(f"calibration: no records of model {dense!r} in {', '.join(map(str, folders))}")
    pools = []
    for (model, name, scenario), (ids, keys, columns) in sorted(runs.items()):
        if model != dense:
            continue
        design, values = kept_columns(name)
        paired = runs.get((variant, name, scenario)) if variant else None
        order = np.arange(len(ids))
        variant_columns = None
        if paired is not None:
            position = {item_id: i for i, item_id in enumerate(paired[0])}
            order = np.array([i for i, item_id in enumerate(ids) if item_id in position], dtype=int)
            other = np.array([position[ids[i]] for i in order], dtype=int)
            variant_columns = {c: paired[2][c][other] for c in values if c in paired[2]}
        pools.append(Pool(
            name, scenario, {c: columns[c][order] for c in design if c in columns},
            {c: columns[c][order] for c in values if c in columns}, variant_columns,
            np.unique(np.array(keys, dtype=object)[order], return_inverse=True)[1].astype(int),
            dense, variant if paired is not None else None,
        ))  # fmt: skip
    return pools


def _compact(values: np.ndarray) -> list:
    return [int(v) if float(v).is_integer() else float(v) for v in np.round(values.astype(float), 6)]


def write_extract(pools: Sequence[Pool], out: Path, command: str) -> None:
    """The compact pool: per-item outcome columns, group codes renumbered 0..k-1, no text."""
    scenarios = [
        {
            "dimension": p.dimension, "scenario": p.scenario, "n": p.n, "cluster": p.cluster.tolist(),
            "structure": {k: np.unique(v, return_inverse=True)[1].tolist() for k, v in p.structure.items()},
            "dense": {k: _compact(v) for k, v in p.dense.items()},
            "variant": {k: _compact(v) for k, v in p.variant.items()} if p.variant else None,
            "provenance": p.provenance,
        }
        for p in pools
    ]  # fmt: skip
    document = {
        "format": EXTRACT_FORMAT, "made_by": command,
        "dense_model": pools[0].dense_model if pools else None,
        "variant_model": next((p.variant_model for p in pools if p.variant_model), None),
        "note": "per-item outcome columns of trustgate records (no prompts or responses); group codes "
        "renumbered; values rounded to 6 decimals",
        "scenarios": scenarios,
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, separators=(",", ":"))
    if out.suffix == ".gz":
        with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as handle:
            handle.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def read_extract(path: Path = DEFAULT_EXTRACT) -> list[Pool]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        document = json.load(handle)
    if document.get("format") != EXTRACT_FORMAT:
        raise SystemExit(f"calibration: {path} is not a {EXTRACT_FORMAT} file")

    def floats(raw: dict) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=float) for k, v in raw.items()}

    return [
        Pool(
            raw["dimension"], raw["scenario"], floats(raw["structure"]), floats(raw["dense"]),
            floats(raw["variant"]) if raw["variant"] else None, np.asarray(raw["cluster"], dtype=int),
            document.get("dense_model") or "dense", document.get("variant_model") if raw["variant"] else None,
            raw.get("provenance", ""),
        )
        for raw in document["scenarios"]
    ]  # fmt: skip
