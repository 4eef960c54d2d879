"""Measure the gate: false-alarm rate and power of each decision rule, by simulation.

    .venv/bin/python benchmarks/gate_calibration.py --simulate [--records DIR ...] [--replicates N]
    .venv/bin/python benchmarks/gate_calibration.py --extract DIR [DIR ...] [--out FILE]

--simulate (no model; minutes): the dense model's stored per-item outcomes are the population.
Each replicate draws a scenario's items with replacement (its sample keys, as --limit picks
them) at the ci or the release size, makes synthetic variants with a KNOWN true drop, and
judges them exactly as the gate does: the dimension's own metric and combine, a paired
percentile bootstrap (items resampled together for both models, stratified by scenario for
the overall check; whole sample keys under [gate] resample = "sample_key" or --resample), the
margin, the refusal bound and the INCONCLUSIVE rule. It reports, per
decision rule and per candidate default policy, the false-alarm rate per check and per
variant (family-wise: any blocking FAIL in the whole run) and the power per dimension as a
function of the true drop.

The synthetic variant of a scenario, from the dense outcome of each drawn item:
  * churn (noise with no net drop): with probability `churn` the item's outcome columns are
    replaced by those of another pool item of the same metric group (stereotype cell,
    sub-task, source model, sensitive group; singleton groups share one bucket), so the
    population metric is unchanged while items flip both ways, as a re-quantised model's do.
    The churn per dimension is estimated from a paired variant in the records (gptq4 in the
    shipped extract): E[(dense - variant)^2] = churn x E[(item - donor)^2]. --churn-unit
    sample_key re-draws a sample key's items together, from one other key (changes correlated
    within keys, as gptq4's are on PII and OOD few-shot: their "design effect" is printed);
  * degradation (the known drop): with probability d the item gets the worst outcome (score
    0, agreement 1, refusal 0; fairness: the prediction that widens the parity gap). Every
    metric here then falls by d x its population value, so d = target / dense metric makes
    the true drop (on the whole pool, i.e. the population) exactly the target; a large Monte
    Carlo with the dimension's real metric confirms it (printed).
Every dimension's scenarios drop by the same amount (capped at a scenario's score, the rest
spread over the others), so the dimension's overall true drop is the target.

--extract writes the compact pool the simulation uses when no --records are given:
per-item outcome columns only (no prompts, no responses; group codes renumbered), of the
embedded model's own outputs on trustgate's own probe sets.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")  # many small matrix products: threads only contend
import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # this checkout's trustgate, not an installed one

from trustgate.dimensions import get_dimension  # noqa: E402
from trustgate.dimensions.base import Dimension, mean_item_score  # noqa: E402
from trustgate.dimensions.registry import NAMES, OVERALL  # noqa: E402
from trustgate.gate.multiplicity import bonferroni_alpha, bootstrap_p_value, holm_reject  # noqa: E402
from trustgate.gate.policy import Thresholds  # noqa: E402
from trustgate.gate.stats import (  # noqa: E402
    EVIDENCE_RULES,
    MIN_KEYS_TO_RESAMPLE,
    RESAMPLE_UNITS,
    rule_detectable_drop,
)

DEFAULT_EXTRACT = REPO_ROOT / "benchmarks" / "data" / "embedded_ci_pool.json.gz"
EXTRACT_FORMAT = "trustgate-calibration-pool/1"
MULTIPLIERS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # true drop, in units of the dimension's margin
FAMILY_ALPHA = 0.05
WORKERS = 2  # processes for simulate() (dimensions in parallel); --workers
INTERIM_RESAMPLES = 0  # interim looks: 0 = percentiles of the full resamples; N = normal approximation from N
RESAMPLE = "item"  # the simulated gate's bootstrap unit: "item" or "sample_key" ([gate] resample; --resample)
CHURN_UNIT = "item"  # what churn re-draws: an item, or a whole sample key's items together (--churn-unit)


# -- metric layouts: the columns a metric reads and how it groups items -------------------------


@dataclass(frozen=True)
class Layout:
    """How a dimension's metric reads its columns, so that it can be evaluated on group sums.

    kind: mean (100 x mean value), groups (100 x mean over groups of the group mean), cells
    (100 x (1 - mean over groups)), grouped (mean over tasks of the mean over sub-tasks),
    parity (100 x (1 - demographic parity gap), 100 when fewer than 3 answers parsed).
    """

    kind: str
    value: str  # the column the metric averages
    group: str | None = None  # the column whose values define the groups
    task: str | None = None  # grouped: the column grouping sub-tasks into tasks
    worst: float = 0.0  # the value of a degraded item (parity: set per group)


def _layouts() -> dict[Callable, Layout]:
    from trustgate.dimensions.adv_robustness import source_mean_accuracy
    from trustgate.dimensions.classification import grouped_mean
    from trustgate.dimensions.fairness import parity_metric
    from trustgate.dimensions.stereotype import agreement_metric

    return {
        mean_item_score: Layout("mean", "score"),
        source_mean_accuracy: Layout("groups", "score", "source"),
        agreement_metric: Layout("cells", "agree", "cell", worst=1.0),
        grouped_mean: Layout("grouped", "score", "subtask", "task"),
        parity_metric: Layout("parity", "prediction", "sensitive"),
    }


def layout_of(dimension: Dimension) -> Layout:
    layouts = _layouts()
    if dimension.metric not in layouts:
        raise SystemExit(
            f"gate_calibration: dimension {dimension.name}'s metric {dimension.metric.__name__} has no layout; "
            "add one to _layouts() (the columns it reads and how it groups items)"
        )
    return layouts[dimension.metric]


def combine_weights(dimension: Dimension, scenarios: Sequence[str]) -> np.ndarray:
    """The weights of a linear combine (mean, privacy's weighted mean), checked on random scores."""
    weights = np.array([dimension.combine({s: float(s == t) for s in scenarios}) for t in scenarios])
    probe = np.random.default_rng(0).uniform(0, 100, size=len(scenarios))
    expected = dimension.combine(dict(zip(scenarios, probe.tolist(), strict=True)))
    if not math.isclose(float(weights @ probe), expected, rel_tol=1e-9, abs_tol=1e-9):
        raise SystemExit(f"gate_calibration: {dimension.name}'s combine is not a weighted mean of scenario scores")
    return weights


# -- pools: one scenario's dense (and optionally a paired variant's) per-item outcomes ----------


@dataclass
class Pool:
    dimension: str
    scenario: str
    structure: dict[str, np.ndarray]  # item properties: group codes (cell, subtask, task, ...)
    dense: dict[str, np.ndarray]  # outcome columns: score, refusal, the metric's value, parsed
    variant: dict[str, np.ndarray] | None
    cluster: np.ndarray  # sample key index per item (--limit keeps or drops a key's items together)
    dense_model: str = "dense"
    variant_model: str | None = None
    responses_changed: int | None = None
    provenance: str = ""  # models' weight fingerprints and the profile of the records

    @property
    def n(self) -> int:
        return len(self.cluster)

    def columns(self, which: str = "dense") -> dict[str, np.ndarray]:
        """Columns as the dimension's metric reads them."""
        values = self.dense if which == "dense" else self.variant
        assert values is not None
        return {**self.structure, **values}


def _outcome_columns(outcomes: Sequence[Mapping]) -> dict[str, np.ndarray]:
    columns = {
        "score": np.array([float(o["score"]) for o in outcomes]),
        "refusal": np.array([float(o["refusal"]) for o in outcomes]),
    }
    for key in sorted({k for o in outcomes for k in o.get("columns", {})}):
        columns[key] = np.array([float(o.get("columns", {}).get(key, np.nan)) for o in outcomes])
    return columns


def _kept_columns(layout: Layout) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(structure columns, outcome columns) of a layout."""
    structure = tuple(c for c in (layout.group, layout.task) if c)
    outcomes = ("score", "refusal") + ((layout.value,) if layout.value != "score" else ())
    if layout.kind == "parity":
        outcomes += ("parsed",)
    return structure, outcomes


def pools_from_records(folders: Sequence[Path], dense: str, variant: str | None) -> list[Pool]:
    """Pools from records/<model>/<dimension>/<scenario>.jsonl (or <dimension>/<scenario>.jsonl)."""
    from trustgate.evaluation.records import read_records, record_files

    runs: dict[tuple[str, str, str], tuple[list[str], list[str], list[str], dict[str, np.ndarray]]] = {}
    provenance: dict[tuple[str, str, str], str] = {}
    for folder in folders:
        for path in record_files(Path(folder)):
            if path.name.endswith(".partial"):
                continue
            header, items, responses, outcomes = read_records(path)
            if header.get("dimension") not in NAMES:
                continue
            dimension = get_dimension(header["dimension"])
            if header.get("scenario") not in dimension.scenarios or not items:
                continue
            key = (header["model"], header["dimension"], header["scenario"])
            ids = [item.id for item in items]
            clusters = [item.sample_key or item.id for item in items]
            texts = ["\x1e".join(r) for r in responses]
            runs[key] = (ids, clusters, texts, _outcome_columns(outcomes))
            provenance[key] = f"{header.get('fingerprint', '')[:12]} profile {header.get('profile')}"
    models = sorted({model for model, _, _ in runs})
    if dense not in models:
        raise SystemExit(f"gate_calibration: no records of model {dense!r} in {', '.join(map(str, folders))}")
    if variant is None:
        others = [m for m in models if m != dense]
        variant = "gptq4" if "gptq4" in others else (others[0] if others else None)
    pools = []
    for (model, name, scenario), (ids, clusters, texts, columns) in sorted(runs.items()):
        if model != dense:
            continue
        dimension = get_dimension(name)
        structure_names, outcome_names = _kept_columns(layout_of(dimension))
        paired = runs.get((variant, name, scenario)) if variant else None
        order = np.arange(len(ids))
        variant_columns, changed = None, None
        if paired is not None:
            position = {item_id: i for i, item_id in enumerate(paired[0])}
            common = [i for i, item_id in enumerate(ids) if item_id in position]
            order = np.array(common, dtype=int)
            other = np.array([position[ids[i]] for i in common], dtype=int)
            variant_columns = {c: paired[3][c][other] for c in outcome_names if c in paired[3]}
            changed = sum(texts[i] != paired[2][j] for i, j in zip(order, other, strict=True))
        structure = {c: columns[c][order] for c in structure_names if c in columns}
        cluster_ids = np.unique(np.array(clusters, dtype=object)[order], return_inverse=True)[1]
        pools.append(
            Pool(
                dimension=name,
                scenario=scenario,
                structure=structure,
                dense={c: columns[c][order] for c in outcome_names if c in columns},
                variant=variant_columns,
                cluster=cluster_ids.astype(int),
                dense_model=dense,
                variant_model=variant if paired is not None else None,
                responses_changed=changed,
                provenance="; ".join(
                    f"{m} {provenance[(m, name, scenario)]}"
                    for m in (dense, variant)
                    if (m, name, scenario) in provenance
                ),
            )
        )
    return pools


def _compact(values: np.ndarray) -> list:
    rounded = np.round(values.astype(float), 6)
    return [int(v) if float(v).is_integer() else float(v) for v in rounded]


def write_extract(pools: Sequence[Pool], out: Path, command: str) -> None:
    """The compact pool: per-item outcome columns, group codes renumbered 0..k-1, no text."""
    scenarios = []
    for pool in pools:
        structure = {name: np.unique(values, return_inverse=True)[1] for name, values in pool.structure.items()}
        scenarios.append(
            {
                "dimension": pool.dimension,
                "scenario": pool.scenario,
                "n": pool.n,
                "cluster": pool.cluster.tolist(),
                "structure": {k: v.tolist() for k, v in structure.items()},
                "dense": {k: _compact(v) for k, v in pool.dense.items()},
                "variant": {k: _compact(v) for k, v in pool.variant.items()} if pool.variant else None,
                "responses_changed": pool.responses_changed,
                "provenance": pool.provenance,
            }
        )
    document = {
        "format": EXTRACT_FORMAT,
        "made_by": command,
        "dense_model": pools[0].dense_model if pools else None,
        "variant_model": next((p.variant_model for p in pools if p.variant_model), None),
        "note": "per-item outcome columns of trustgate records (no prompts or responses); group codes "
        "renumbered; values rounded to 6 decimals",
        "scenarios": scenarios,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, separators=(",", ":"))
    if out.suffix == ".gz":
        with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as handle:
            handle.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def read_extract(path: Path) -> list[Pool]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        document = json.load(handle)
    if document.get("format") != EXTRACT_FORMAT:
        raise SystemExit(f"gate_calibration: {path} is not a {EXTRACT_FORMAT} file")
    pools = []
    for raw in document["scenarios"]:
        pools.append(
            Pool(
                dimension=raw["dimension"],
                scenario=raw["scenario"],
                structure={k: np.asarray(v, dtype=float) for k, v in raw["structure"].items()},
                dense={k: np.asarray(v, dtype=float) for k, v in raw["dense"].items()},
                variant={k: np.asarray(v, dtype=float) for k, v in raw["variant"].items()} if raw["variant"] else None,
                cluster=np.asarray(raw["cluster"], dtype=int),
                dense_model=document.get("dense_model") or "dense",
                variant_model=document.get("variant_model") if raw["variant"] else None,
                responses_changed=raw.get("responses_changed"),
                provenance=raw.get("provenance", ""),
            )
        )
    return pools


# -- a scenario prepared for the vectorised engine ---------------------------------------------


@dataclass
class Prepared:
    pool: Pool
    layout: Layout
    x: np.ndarray  # the metric's value per pool item (dense)
    refusal: np.ndarray
    parsed: np.ndarray
    g: np.ndarray  # group index per item, 0..G-1
    groups: int
    tasks: np.ndarray  # (G, K) membership of groups in tasks (grouped), else (G, 1) ones
    worst: np.ndarray  # value of a degraded item, per pool item
    bucket_start: np.ndarray  # churn donors: the item's bucket in `bucket_order`
    bucket_size: np.ndarray
    bucket_pos: np.ndarray
    bucket_order: np.ndarray
    cluster_members: np.ndarray | None  # (clusters, size) when every sample key has as many items
    silent: bool  # a refusal carries no signal here: counts for the base answer rate
    metric: float = 0.0  # the dimension's real metric on the whole pool (the population)

    @property
    def items_per_key(self) -> int:
        """Items of each sample key where every key has as many (drawn items then lie key after
        key, see draw_items); 1 where key sizes differ and items are drawn one by one."""
        return self.cluster_members.shape[1] if self.cluster_members is not None else 1

    @property
    def capacity(self) -> float:
        """The largest true drop degradation can make (a parity gap needs two groups)."""
        if self.layout.kind == "parity" and self.groups < 2:
            return 0.0
        return self.metric

    @property
    def clusters(self) -> int:
        return int(self.pool.cluster.max()) + 1


def prepare(pool: Pool, dimension: Dimension) -> Prepared:
    layout = layout_of(dimension)
    dense = pool.dense
    x = dense[layout.value].astype(float)
    parsed = dense.get("parsed", np.ones_like(x)).astype(float)
    if layout.group and layout.group in pool.structure:
        codes, g = np.unique(pool.structure[layout.group], return_inverse=True)
    else:
        codes, g = np.zeros(1), np.zeros(pool.n, dtype=int)
    groups = len(codes)
    tasks = np.ones((groups, 1))
    if layout.kind == "grouped" and layout.task and layout.task in pool.structure:
        first = np.array([np.flatnonzero(g == k)[0] for k in range(groups)])
        task_codes, task_of_group = np.unique(pool.structure[layout.task][first], return_inverse=True)
        tasks = np.zeros((groups, len(task_codes)))
        tasks[np.arange(groups), task_of_group] = 1.0
    elif layout.kind == "grouped":
        tasks = np.eye(groups)
    if layout.kind == "grouped" and tasks.shape[1] == groups:
        layout = dataclasses.replace(layout, kind="groups")  # one sub-task per task: the mean over groups
    worst = np.full(pool.n, layout.worst)
    if layout.kind == "parity":
        rates = np.array([x[g == k].mean() for k in range(groups)])
        high = int(np.flatnonzero(rates == rates.max())[-1])
        worst = (g == high).astype(float)
    # churn buckets: the item's metric group when it has >= 2 items, else all singleton items
    # (an equal-weight mean over groups keeps its expectation); a parity gap compares groups,
    # so there an item of a one-item group keeps its outcome
    sizes = np.bincount(g, minlength=groups)
    lone = groups if layout.kind != "parity" else groups + np.arange(pool.n)
    bucket = np.where(sizes[g] >= 2, g, lone)
    order = np.argsort(bucket, kind="stable")
    counts = np.bincount(bucket)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.empty(pool.n, dtype=int)
    pos[order] = np.arange(pool.n) - starts[bucket[order]]
    cluster_sizes = np.bincount(pool.cluster)
    members = None
    if np.all(cluster_sizes == cluster_sizes[0]):
        members = np.argsort(pool.cluster, kind="stable").reshape(len(cluster_sizes), cluster_sizes[0])
    prepared = Prepared(
        pool=pool,
        layout=layout,
        x=x,
        refusal=dense["refusal"].astype(float),
        parsed=parsed,
        g=g.astype(int),
        groups=groups,
        tasks=tasks,
        worst=worst,
        bucket_start=starts[bucket],
        bucket_size=counts[bucket],
        bucket_pos=pos,
        bucket_order=order,
        cluster_members=members,
        silent=not dimension.refusal_carries_signal(pool.scenario),
    )
    # The population is the pool's empirical distribution: its metric is that of the pool repeated
    # (the same for every metric here except fairness's "fewer than 3 parsed" rule on tiny pools).
    copies = max(1, math.ceil(1000 / pool.n))
    population = {key: np.tile(values, copies) for key, values in pool.columns().items()}
    prepared.metric = float(dimension.metric(population))
    return prepared


def donors(prep: Prepared, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random other item of each item's churn bucket (the item itself when it is alone)."""
    size = prep.bucket_size[items]
    step = 1 + np.floor(rng.random(items.shape) * np.maximum(size - 1, 1)).astype(int)
    pos = np.where(size >= 2, (prep.bucket_pos[items] + step) % np.maximum(size, 1), prep.bucket_pos[items])
    return prep.bucket_order[prep.bucket_start[items] + pos]


def key_donors(prep: Prepared, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every drawn sample key's items replaced, position by position, by those of a random other
    key of the pool: churn that moves a key's items together (a model that starts leaking one
    address leaks it under most of its prompts). `items` lie key after key (draw_items)."""
    members = prep.cluster_members
    assert members is not None
    keys, per_key = members.shape
    key_of = np.empty(prep.pool.n, dtype=int)
    key_of[members.ravel()] = np.repeat(np.arange(keys), per_key)
    drawn = key_of[items[..., ::per_key]]
    other = (drawn + 1 + rng.integers(0, max(keys - 1, 1), size=drawn.shape)) % keys if keys > 1 else drawn
    return members[other].reshape(items.shape)


def churn_sources(prep: Prepared, items: np.ndarray, rng: np.random.Generator, churn: float, unit: str) -> np.ndarray:
    """Where each drawn item's outcome comes from in the variant before degradation: itself, or
    with probability `churn` a donor (an item of its bucket; under unit "sample_key" the key's
    items all come from one other key)."""
    if unit == "sample_key" and prep.items_per_key > 1:
        per_key = prep.items_per_key
        moved = np.repeat(rng.random((*items.shape[:-1], items.shape[-1] // per_key)) < churn, per_key, axis=-1)
        return np.where(moved, key_donors(prep, items, rng), items)
    return np.where(rng.random(items.shape) < churn, donors(prep, items, rng), items)


def churn_moment(prep: Prepared) -> tuple[float, float]:
    """(sum of (dense - variant)^2, sum of expected (item - donor)^2) over the pool's items."""
    if prep.pool.variant is None:
        return 0.0, 0.0
    xv = prep.pool.variant[prep.layout.value].astype(float)
    observed = float(np.sum((prep.x - xv) ** 2))
    expected = 0.0
    for bucket_start in np.unique(prep.bucket_start):
        members = prep.bucket_order[bucket_start : bucket_start + prep.bucket_size[prep.bucket_order[bucket_start]]]
        if len(members) < 2:
            continue
        values = prep.x[members]
        k = len(members)
        # sum over i of the mean over j != i of (v_i - v_j)^2
        expected += float((2 * k * np.sum(values**2) - 2 * np.sum(values) ** 2) / (k - 1))
    return observed, expected


def design_effect(prep: Prepared) -> float | None:
    """1 + (k - 1) x ICC of the paired differences within sample keys (k items per key): how much
    the variance of a mean drop exceeds what an item-level bootstrap assumes. None without a
    paired variant or with one item per key."""
    if prep.pool.variant is None or prep.cluster_members is None or prep.cluster_members.shape[1] < 2:
        return None
    diff = (prep.x - prep.pool.variant[prep.layout.value])[prep.cluster_members]  # (keys, k)
    keys, k = diff.shape
    if keys < 2:
        return None
    between = k * np.var(diff.mean(axis=1), ddof=1)
    within = float(np.sum((diff - diff.mean(axis=1, keepdims=True)) ** 2) / (keys * (k - 1)))
    if between + (k - 1) * within <= 0:
        return 1.0
    icc = (between - within) / (between + (k - 1) * within)
    return float(1 + (k - 1) * icc)


# -- vectorised metrics on group sums -----------------------------------------------------------


def metric_from_sums(layout: Layout, counts: np.ndarray, sums: np.ndarray, parsed: np.ndarray | None, tasks):
    """The layout's metric from per-group item counts and value sums.

    Axis -2 is the group axis (counts and sums: (..., G, B)); the result is (..., B). Fairness
    also needs the parsed answers' sum (..., B); grouped the (G, K) task membership.
    """
    from trustgate.dimensions.fairness import MIN_PARSED

    present = counts > 0
    shape = np.broadcast(sums, counts).shape
    rate = np.divide(sums, counts, out=np.zeros(shape, dtype=sums.dtype), where=present)
    if layout.kind == "mean":
        return 100.0 * rate[..., 0, :]
    if layout.kind in ("groups", "cells"):
        mean = rate.sum(axis=-2) / present.sum(axis=-2)
        return 100.0 * mean if layout.kind == "groups" else 100.0 * (1.0 - mean)
    if layout.kind == "grouped":
        membership = tasks.T  # (K, G)
        task_sum = membership @ rate
        task_count = membership @ np.broadcast_to(present, rate.shape).astype(float)
        task_present = task_count > 0
        task_mean = np.divide(task_sum, task_count, out=np.zeros_like(task_sum), where=task_present)
        return 100.0 * task_mean.sum(axis=-2) / task_present.sum(axis=-2)
    if layout.kind == "parity":
        present = np.broadcast_to(present, rate.shape)
        high = np.where(present, rate, -np.inf).max(axis=-2)
        low = np.where(present, rate, np.inf).min(axis=-2)
        gap = np.where(present.sum(axis=-2) > 1, high - low, 0.0)
        score = 100.0 * (1.0 - gap)
        return np.where(parsed < MIN_PARSED, 100.0, score)
    raise ValueError(f"unknown layout kind {layout.kind!r}")


# -- the engine: one scenario, a chunk of replicates --------------------------------------------


@dataclass
class Look:
    """One scenario at one look (a prefix of its drawn sample keys): models = dense, then one
    variant per degradation share."""

    boot: np.ndarray  # (models, replicates, resamples) metric of each bootstrap resample
    point: np.ndarray  # (models, replicates) metric of the look's items
    refusal: np.ndarray  # (models, replicates) refusal rate in %
    rise_var: np.ndarray  # (levels, replicates) variance of the mean paired refusal rise, in %^2
    answered: np.ndarray  # (replicates,) dense items with a scorable answer (sum of 1 - refusal)
    n: int


@dataclass
class Draws:
    """One chunk of one scenario: one Look per look of the schedule, the last on every drawn item."""

    looks: list[Look]
    items: np.ndarray | None = None  # (replicates, n) the pool items drawn

    @property
    def final(self) -> Look:
        return self.looks[-1]

    @property
    def n(self) -> int:
        return self.final.n


def draw_items(prep: Prepared, rng: np.random.Generator, replicates: int, clusters: int) -> np.ndarray:
    """Pool indices of each replicate's items: `clusters` sample keys drawn with replacement
    (their items together), or items one by one when sample keys differ in size."""
    if prep.cluster_members is not None:
        keys = rng.integers(0, prep.cluster_members.shape[0], size=(replicates, clusters))
        return prep.cluster_members[keys].reshape(replicates, -1)
    per_key = prep.pool.n / prep.clusters
    n = max(1, round(clusters * per_key))
    return rng.integers(0, prep.pool.n, size=(replicates, n))


def look_items(prep: Prepared, clusters: int, looks: Sequence[float]) -> list[int]:
    """Items at each look: the first ceil(f x K) of the K sample keys drawn (the gate's fixed
    seeded order is a prefix of its selection, and drawn keys are exchangeable), with their items."""
    if prep.cluster_members is not None:
        per_key = prep.cluster_members.shape[1]
        return [math.ceil(f * clusters - 1e-9) * per_key for f in looks]
    per_key = prep.pool.n / prep.clusters
    n = max(1, round(clusters * per_key))
    return [min(n, max(1, round(math.ceil(f * clusters - 1e-9) * per_key))) for f in looks]


def first_level(uniform: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """The first level at which each item is degraded (uniform < share); len(shares) for never.
    Shares grow with the level, so the degraded items of a level include the previous level's."""
    if np.any(np.diff(shares) < 0):
        raise ValueError(f"degradation shares must not decrease with the level: {shares}")
    return np.searchsorted(shares, uniform, side="right")


def simulate_chunk(
    prep: Prepared,
    rng: np.random.Generator,
    replicates: int,
    clusters: int,
    churn: float,
    shares: Sequence[float],
    resamples: int,
    looks: Sequence[float] = (1.0,),
    interim_resamples: int | None = None,
    resample: str = "item",
    churn_unit: str = "item",
) -> Draws:
    """Draw `replicates` samples of the scenario, make every level's variant of each, and score
    dense and variants on the drawn items (point) and on `resamples` paired bootstrap resamples,
    at every look of `looks` (fractions of the sample keys; the last is 1: every drawn item).

    A resample is a vector of item counts W (multinomial, as the gate's integers(0, n, n) draws);
    every metric here is a function of per-group counts and value sums, so one matrix product
    W @ Z gives them for dense and every level at once. Z's columns: the group one-hot, its
    products with the dense and the churned value, and per level the degradation delta of the
    items degraded at that level (levels are nested); fairness adds the parsed counts. A look
    resamples its own prefix of the items (n_k draws among the first n_k items), the interim ones
    with `interim_resamples` resamples (default: `resamples`). `resample`: the gate's bootstrap
    unit, "item" or "sample_key" (every item of a drawn key weighs as often as the key is drawn).
    `churn_unit`: what churn re-draws (churn_sources).
    """
    shares = np.asarray(shares, dtype=float)
    levels, groups = len(shares), prep.groups
    items = draw_items(prep, rng, replicates, clusters)
    n = items.shape[1]
    source = churn_sources(prep, items, rng, churn, churn_unit)
    first = first_level(rng.random(items.shape), shares)
    degraded = first[..., None] <= np.arange(levels)  # (replicates, n, levels)
    onehot = prep.g[items][..., None] == np.arange(groups)  # (replicates, n, G)
    dense, churned = prep.x[items], prep.x[source]
    delta = prep.worst[items] - churned
    blocks = [
        onehot,
        onehot * dense[..., None],
        onehot * churned[..., None],
        (onehot[..., None, :] * (delta[..., None] * degraded)[..., None]).reshape(replicates, n, levels * groups),
    ]
    parity = prep.layout.kind == "parity"
    if parity:
        parsed_churned = prep.parsed[source]
        blocks += [
            prep.parsed[items][..., None],
            parsed_churned[..., None],
            (1.0 - parsed_churned)[..., None] * degraded,
        ]
    z = np.concatenate([b.astype(np.float32) for b in blocks], axis=-1).transpose(0, 2, 1).copy()  # (R, M, n)

    def scores(sums: np.ndarray) -> np.ndarray:
        """(levels + 1, replicates, B) metrics from sums (replicates, M, B): dense, then each level."""
        r, _, b = sums.shape
        counts = sums[:, None, :groups]
        values = np.empty((r, levels + 1, groups, b), dtype=sums.dtype)
        values[:, 0] = sums[:, groups : 2 * groups]
        increments = sums[:, 3 * groups : (3 + levels) * groups].reshape(r, levels, groups, b)
        np.add(sums[:, None, 2 * groups : 3 * groups], increments, out=values[:, 1:])
        parsed = None
        if parity:
            at = (3 + levels) * groups
            parsed = np.empty((r, levels + 1, b), dtype=sums.dtype)
            parsed[:, 0] = sums[:, at]
            np.add(sums[:, None, at + 1], sums[:, at + 2 : at + 2 + levels], out=parsed[:, 1:])
        metrics = metric_from_sums(prep.layout, counts, values, parsed, prep.tasks)
        return np.moveaxis(metrics, 1, 0)

    refusal_dense = prep.refusal[items]
    refusal_variant = [np.where(degraded[..., level], 0.0, prep.refusal[source]) for level in range(levels)]
    prefixes = look_items(prep, clusters, looks)
    if prefixes[-1] != n:
        raise ValueError(f"the last look must hold every drawn item ({prefixes[-1]} of {n})")
    # Under resample = "sample_key" the gate draws a scenario's sample keys, each with all its items
    # (items where a look has fewer than MIN_KEYS_TO_RESAMPLE keys); the drawn items lie key after
    # key (draw_items), `key_size` of them a key.
    key_size = prep.items_per_key if resample == "sample_key" else 1
    out = []
    for k, m in enumerate(prefixes):
        b_count = resamples if k == len(prefixes) - 1 or not interim_resamples else interim_resamples
        per_key = key_size if m // key_size >= MIN_KEYS_TO_RESAMPLE else 1
        units = m // per_key
        # W[r, j, b]: how often resample b of replicate r draws unit j (the gate's integers(0, units, units))
        index = rng.integers(0, units, size=(replicates, b_count, units))
        index += (np.arange(replicates) * units)[:, None, None]
        index *= b_count
        index += np.arange(b_count)[None, :, None]
        counts = np.bincount(index.ravel(), minlength=replicates * b_count * units)
        weights = np.repeat(counts.reshape(replicates, units, b_count), per_key, axis=1).astype(np.float32)
        zm = z[:, :, :m]
        boot = scores(np.matmul(zm, weights))  # (levels + 1, replicates, resamples), float32
        point = scores(zm.sum(axis=2, dtype=float)[..., None])[..., 0]  # (levels + 1, replicates)
        # the paired refusal rise of each unit (an item, or a key's mean), for its standard error
        rise = [
            (v[:, :m] - refusal_dense[:, :m]).reshape(replicates, units, per_key).mean(axis=2) for v in refusal_variant
        ]
        out.append(
            Look(
                boot=boot,
                point=point,
                refusal=100.0
                * np.stack([refusal_dense[:, :m].mean(axis=1), *(v[:, :m].mean(axis=1) for v in refusal_variant)]),
                rise_var=1e4 * np.stack([r.var(axis=1) / units for r in rise]),
                answered=(1.0 - refusal_dense[:, :m]).sum(axis=1),
                n=m,
            )
        )
    return Draws(looks=out, items=items)


# -- degradation targets --------------------------------------------------------------------------


def scenario_drops(capacity: np.ndarray, weights: np.ndarray, target: float) -> tuple[np.ndarray, bool]:
    """Per-scenario true drops with weighted mean `target`: equal where possible, each at most the
    scenario's capacity (its score; water-filling). Second value: whether the target was reachable."""
    if target <= 0:
        return np.zeros_like(capacity), True
    weights = weights / weights.sum()
    total = float(weights @ capacity)
    if total <= target:
        return capacity.copy(), total >= target - 1e-9
    low, high = 0.0, float(capacity.max())
    for _ in range(100):
        level = (low + high) / 2
        if float(weights @ np.minimum(capacity, level)) < target:
            low = level
        else:
            high = level
    return np.minimum(capacity, high), True


def true_drop_monte_carlo(prep: Prepared, dimension: Dimension, churn: float, share: float, rng, copies: int):
    """The drop of the dimension's real metric between the pool and a large variant population."""
    items = np.tile(np.arange(prep.pool.n), copies)
    source = np.where(rng.random(items.shape) < churn, donors(prep, items, rng), items)
    hit = rng.random(items.shape) < share
    values = dict(prep.pool.dense)
    variant = {key: column[source] for key, column in values.items()}
    variant[prep.layout.value] = np.where(hit, prep.worst[items], prep.x[source])
    if "parsed" in variant:
        variant["parsed"] = np.where(hit, 1.0, variant["parsed"])
    structure = {key: column[items] for key, column in prep.pool.structure.items()}
    return prep.metric - float(dimension.metric({**structure, **variant}))


# -- running the simulation: per-check statistics over replicates ------------------------------


@dataclass
class LookStats:
    """A check at one interim look: the quantiles of its resampled drop that the interim intervals
    need, and the paired refusal rise with its standard error (normal approximation)."""

    fraction: float
    n_items: int  # items in the check's scope at this look
    smallest_scenario: int  # items of the scope's smallest scenario at this look
    quantile_levels: tuple[float, ...]
    quantiles: np.ndarray  # (Q, levels, R)
    point: np.ndarray  # (levels, R) estimated drop
    variant_score: np.ndarray  # (levels, R)
    refusal_rise: np.ndarray  # (levels, R)
    refusal_se: np.ndarray  # (levels, R)
    answered: np.ndarray  # (R,) dense scorable-answer rate (%) over the silent scenarios; nan if none

    def quantile(self, q: float) -> np.ndarray:
        return self.quantiles[_level_index(self.quantile_levels, q)]


@dataclass
class CheckStats:
    dimension: str
    scenario: str
    margin: float
    max_refusal_rise: float
    true_drop: np.ndarray  # (levels,)
    point: np.ndarray  # (levels, R) estimated drop
    quantiles: np.ndarray  # (Q, levels, R) percentiles of the resampled drop
    p_value: np.ndarray  # (levels, R) one-sided bootstrap p of "drop <= margin"
    refusal_rise: np.ndarray  # (levels, R)
    inconclusive: np.ndarray  # (R,) the dense model does not answer (base-answer rule)
    width: np.ndarray  # (levels, R) width of the 95% interval
    n_items: int = 0
    variant_score: np.ndarray | None = None  # (levels, R) the variant's point score (the floor)
    floor: float | None = None
    rule: str = "point"  # the rule thresholds.toml gives this check
    tier: str = "blocking"
    min_base_answer_rate: float = 10.0
    looks: list[LookStats] = field(default_factory=list)  # interim looks, in order (not the last)
    refusal_se: np.ndarray | None = None  # (levels, R) of the paired refusal rise (normal approximation)


def _level_index(levels: Sequence[float], q: float) -> int:
    index = min(range(len(levels)), key=lambda i: abs(levels[i] - q))
    if abs(levels[index] - q) > 1e-9:
        raise KeyError(f"quantile {q} was not computed (have {list(levels)})")
    return index


@dataclass
class SimulationResult:
    profile: str
    levels: tuple[float, ...]
    quantile_levels: tuple[float, ...]
    checks: list[CheckStats]
    replicates: int
    resamples: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    churn: dict[str, float] = field(default_factory=dict)
    looks: tuple[float, ...] = (1.0,)
    look_items: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (dim, scenario) -> per look

    def index(self, dimension: str | None = None, overall: bool | None = None) -> list[int]:
        return [
            i
            for i, c in enumerate(self.checks)
            if (dimension is None or c.dimension == dimension)
            and (overall is None or (c.scenario == OVERALL) == overall)
        ]

    def quantile(self, check: CheckStats, q: float) -> np.ndarray:
        return check.quantiles[_level_index(self.quantile_levels, q)]


def _stats(drops, point_drop, refusal_rise, inconclusive, margin, qs, normal: bool = False) -> dict[str, np.ndarray]:
    """The last look's statistics: percentiles of the resampled drops (as the gate's interval), or with
    `normal` the estimate +- z_q x their standard deviation (and a normal p-value)."""
    probabilities = sorted(set(qs) | {0.025, 0.975})
    if normal:
        sd = drops.std(axis=-1)
        quantiles = np.stack([point_drop + _norm_quantile(q) * sd for q in probabilities])
        from statistics import NormalDist

        cdf = np.vectorize(NormalDist().cdf)
        p_value = cdf(np.divide(margin - point_drop, sd, out=np.full_like(sd, np.inf), where=sd > 0))
        p_value = np.where(sd > 0, p_value, np.where(point_drop > margin, 0.0, 1.0))
    else:
        quantiles = np.quantile(drops, probabilities, axis=-1)
        p_value = bootstrap_p_value(drops, margin)
    at = {q: quantiles[i] for i, q in enumerate(probabilities)}
    return {
        "point": point_drop,
        "quantiles": np.stack([at[q] for q in qs]),
        "p_value": p_value,
        "refusal_rise": refusal_rise,
        "inconclusive": inconclusive,
        "width": at[0.975] - at[0.025],
    }


def _answered_rate(looks: Sequence[Look], silent: Sequence[bool]) -> np.ndarray:
    """The dense model's scorable-answer rate (%) over the silent scenarios of a check's scope."""
    mine = [look for look, quiet in zip(looks, silent, strict=True) if quiet]
    if not mine:
        return np.full(looks[0].answered.shape, np.nan)
    return 100.0 * sum(look.answered for look in mine) / sum(look.n for look in mine)


def _simulate_dimension(
    name: str,
    preps: list[Prepared],
    thresholds: Thresholds,
    profile: str,
    sizes: Mapping[tuple[str, str], int],
    churn: Mapping[str, float],
    replicates: int,
    resamples: int,
    seed: Sequence[int],
    quantile_levels: Sequence[float],
    multipliers: Sequence[float],
    chunk_budget: float,
    looks: tuple[float, ...],
    interim_levels: tuple[float, ...],
    interim_resamples: int,
    normal_final: bool,
    resample: str = "item",
    churn_unit: str = "item",
) -> tuple[list[CheckStats], list[str], dict[tuple[str, str], list[int]]]:
    """One dimension's checks (its own random stream, so dimensions can run in parallel)."""
    rng = np.random.default_rng(seed)
    checks: list[CheckStats] = []
    notes: list[str] = []
    all_look_items: dict[tuple[str, str], list[int]] = {}
    dimension = get_dimension(name)
    scenarios = [p.pool.scenario for p in preps]
    weights = combine_weights(dimension, scenarios)
    wsum = weights.sum()
    overall_policy = thresholds.policy(name)
    metrics = np.array([p.metric for p in preps])
    capacity = np.array([p.capacity for p in preps])
    per_level = []
    for multiplier in multipliers:
        drops, reachable = scenario_drops(capacity, weights, multiplier * overall_policy.margin)
        if not reachable:
            notes.append(
                f"{profile}: {name} at {multiplier:g}x margin: the dense scores allow a drop of only "
                f"{float(weights @ drops / weights.sum()):.2f}"
            )
        per_level.append(drops)
    scenario_targets = np.array(per_level)  # (levels, scenarios)
    shares = np.divide(scenario_targets, metrics, out=np.zeros_like(scenario_targets), where=metrics > 0)
    shares = np.minimum(shares, 1.0)
    policies = [thresholds.policy(name, s) for s in scenarios]
    silent = [p.silent for p in preps]
    for p, s in zip(preps, scenarios, strict=True):
        all_look_items[(name, s)] = look_items(p, sizes[(name, s)], looks)
    interim = len(looks) - 1
    collected: list[dict[str, list]] = [dict() for _ in range(len(preps) + 1)]
    interim_collected: list[list[dict[str, list]]] = [[dict() for _ in range(interim)] for _ in range(len(preps) + 1)]
    widest = max(sizes[(name, s)] * (p.pool.n / p.clusters) for p, s in zip(preps, scenarios, strict=True))
    outputs = max(p.groups * (3 + len(multipliers)) + 3 + len(multipliers) for p in preps)
    chunk = int(max(1, min(replicates, chunk_budget // (resamples * max(widest, outputs)))))
    done = 0
    while done < replicates:
        reps = min(chunk, replicates - done)
        draws = [
            simulate_chunk(
                p,
                rng,
                reps,
                sizes[(name, s)],
                churn.get(name, 0.0),
                shares[:, i],
                resamples,
                looks,
                interim_resamples or None,
                resample,
                churn_unit,
            )
            for i, (p, s) in enumerate(zip(preps, scenarios, strict=True))
        ]
        for j in range(len(looks)):
            at = [d.looks[j] for d in draws]
            last = j == len(looks) - 1
            per_check = []
            for i, (look, prep) in enumerate(zip(at, preps, strict=True)):
                per_check.append(
                    (i, look.boot, look.point, look.refusal, look.rise_var, _answered_rate([look], [prep.silent]),
                     policies[i])
                )  # fmt: skip
            boot = sum(w * look.boot for w, look in zip(weights, at, strict=True)) / wsum
            point = sum(w * look.point for w, look in zip(weights, at, strict=True)) / wsum
            refusal = sum(w * look.refusal for w, look in zip(weights, at, strict=True)) / wsum
            rise_var = sum(w**2 * look.rise_var for w, look in zip(weights, at, strict=True)) / wsum**2
            per_check.append((len(preps), boot, point, refusal, rise_var, _answered_rate(at, silent), overall_policy))
            for i, b, pt, ref, rv, answered, policy in per_check:
                drops = b[0][None] - b[1:]
                point_drop = pt[0][None] - pt[1:]
                rise = ref[1:] - ref[0][None]
                if last:
                    inconclusive = answered < policy.min_base_answer_rate - 1e-9  # nan (no silent): False
                    stats = _stats(drops, point_drop, rise, inconclusive, policy.margin, quantile_levels, normal_final)
                    stats["variant_score"] = pt[1:]
                    stats["refusal_se"] = np.sqrt(rv)
                    target = collected[i]
                else:
                    if not interim_levels:
                        quantiles = np.zeros((0, *point_drop.shape))
                    elif interim_resamples:
                        z = np.array([_norm_quantile(q) for q in interim_levels])[:, None, None]
                        quantiles = point_drop[None] + z * drops.std(axis=-1)[None]
                    else:
                        quantiles = np.quantile(drops, interim_levels, axis=-1)
                    stats = {
                        "quantiles": quantiles,
                        "point": point_drop,
                        "variant_score": pt[1:],
                        "refusal_rise": rise,
                        "refusal_se": np.sqrt(rv),
                        "answered": answered,
                    }  # fmt: skip
                    target = interim_collected[i][j]
                for key, value in stats.items():
                    target.setdefault(key, []).append(value)
        done += reps
    overall_true = scenario_targets @ weights / weights.sum()
    labels = [*scenarios, OVERALL]
    for i, label in enumerate(labels):
        policy = policies[i] if label != OVERALL else overall_policy
        got = {k: np.concatenate(v, axis=-1) for k, v in collected[i].items()}
        if label == OVERALL:
            scope = [sum(all_look_items[(name, s)][j] for s in scenarios) for j in range(len(looks))]
            smallest = [min(all_look_items[(name, s)][j] for s in scenarios) for j in range(len(looks))]
        else:
            scope = smallest = all_look_items[(name, label)]
        interim_stats = []
        for j in range(interim):
            raw = {k: np.concatenate(v, axis=-1) for k, v in interim_collected[i][j].items()}
            interim_stats.append(
                LookStats(
                    fraction=looks[j],
                    n_items=int(scope[j]),
                    smallest_scenario=int(smallest[j]),
                    quantile_levels=interim_levels,
                    quantiles=raw["quantiles"],
                    point=raw["point"],
                    variant_score=raw["variant_score"],
                    refusal_rise=raw["refusal_rise"],
                    refusal_se=raw["refusal_se"],
                    answered=raw["answered"],
                )
            )
        checks.append(
            CheckStats(
                dimension=name,
                scenario=label,
                margin=policy.margin,
                max_refusal_rise=policy.max_refusal_rise,
                true_drop=scenario_targets[:, i] if label != OVERALL else overall_true,
                point=got["point"],
                quantiles=got["quantiles"],
                p_value=got["p_value"],
                refusal_rise=got["refusal_rise"],
                refusal_se=got["refusal_se"],
                inconclusive=got["inconclusive"],
                width=got["width"],
                n_items=int(scope[-1]),
                variant_score=got["variant_score"],
                floor=policy.floor,
                rule=policy.rule,
                tier=policy.tier,
                min_base_answer_rate=policy.min_base_answer_rate,
                looks=interim_stats,
            )
        )
    return checks, notes, all_look_items


def simulate(
    prepared: Mapping[str, list[Prepared]],
    thresholds: Thresholds,
    profile: str,
    sizes: Mapping[tuple[str, str], int],
    churn: Mapping[str, float],
    replicates: int,
    resamples: int,
    seed: int,
    quantile_levels: Sequence[float],
    multipliers: Sequence[float] = MULTIPLIERS,
    dimensions: Sequence[str] | None = None,
    chunk_budget: float = 1e6,
    looks: Sequence[float] = (1.0,),
    interim_levels: Sequence[float] = (),
    interim_resamples: int = INTERIM_RESAMPLES,
    normal_final: bool = False,
) -> SimulationResult:
    """Every check of every dimension, `replicates` times, at each true drop (multiplier x margin),
    at every look of `looks` (the last, 1.0, is the whole selection). The earlier looks keep only
    the `interim_levels` quantiles of the drop, from a normal approximation: the look's estimate
    +- z_q x the standard deviation of `interim_resamples` paired bootstrap resamples (0: percentiles
    of `resamples` resamples, as the last look). `normal_final`: the last look too (large samples)."""
    start = time.perf_counter()
    looks = tuple(float(f) for f in looks)
    if not looks or abs(looks[-1] - 1.0) > 1e-12 or any(b <= a for a, b in itertools.pairwise(looks)):
        raise ValueError(f"looks must increase and end at 1.0, got {looks}")
    interim_levels = tuple(sorted(set(interim_levels)))
    checks: list[CheckStats] = []
    notes: list[str] = []
    all_look_items: dict[tuple[str, str], list[int]] = {}
    names = [name for name in prepared if dimensions is None or name in dimensions]
    jobs = [
        (name, prepared[name], thresholds, profile, sizes, churn, replicates, resamples,
         (seed, NAMES.index(name)), tuple(quantile_levels), tuple(multipliers), chunk_budget, looks,
         interim_levels, interim_resamples, normal_final, RESAMPLE, CHURN_UNIT)
        for name in names
    ]  # fmt: skip
    workers = min(WORKERS, len(jobs))
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the costliest dimensions first (items x groups), so the workers finish together
        order = sorted(range(len(jobs)), key=lambda k: -sum(p.pool.n * p.groups for p in jobs[k][1]))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {k: pool.submit(_simulate_dimension, *jobs[k]) for k in order}
            done = [futures[k].result() for k in range(len(jobs))]
    else:
        done = [_simulate_dimension(*job) for job in jobs]
    for got_checks, got_notes, got_items in done:
        checks += got_checks
        notes += got_notes
        all_look_items.update(got_items)
    return SimulationResult(
        profile=profile,
        levels=tuple(multipliers),
        quantile_levels=tuple(quantile_levels),
        checks=checks,
        replicates=replicates,
        resamples=resamples,
        seconds=time.perf_counter() - start,
        notes=notes,
        churn=dict(churn),
        looks=looks,
        look_items=all_look_items,
    )


# -- decision policies ----------------------------------------------------------------------------


def family_size(blocking: str, thresholds: Thresholds | None = None) -> int:
    """Blocking checks of a whole run of the gate (every registered dimension), whatever the pool
    holds: the multiplicity correction of the proposed policy is fixed, so that a -k selection or a
    partial pool does not loosen it. With `thresholds`, dimensions of tier "informational" do not count."""
    from trustgate.dimensions.registry import all_dimensions

    dimensions = {
        name: d
        for name, d in all_dimensions().items()
        if thresholds is None or thresholds.policy(name).tier == "blocking"
    }
    if blocking == "overall":
        return len(dimensions)
    return sum(len(d.scenarios) + 1 for d in dimensions.values())


# [gate] keys of the new policy (issue 11), with the defaults that apply when thresholds.toml
# does not set them and the installed trustgate.gate.policy does not know them yet.
NEW_GATE_KEYS: dict[str, object] = {
    "scenario_checks": "informational",
    "multiplicity": "bonferroni",
    "family_alpha": 0.05,
    "looks": (0.25, 0.5, 1.0),
    "interim_alpha": 0.01,
    "min_look_items": 10,
}
CHOICES = {"scenario_checks": ("informational", "blocking"), "multiplicity": ("bonferroni", "none")}


@dataclass(frozen=True)
class GateSettings:
    """The gate policy of thresholds.toml's [gate], as the simulation's default policy uses it."""

    rule: str
    confidence: float
    inconclusive: str  # "fail": INCONCLUSIVE blocks; "warn": it does not
    scenario_checks: str
    multiplicity: str
    family_alpha: float
    looks: tuple[float, ...]
    interim_alpha: float
    min_look_items: int
    blocking_dimensions: int  # m of the Bonferroni correction over the overall checks
    source: dict[str, str] = field(default_factory=dict)  # key -> "thresholds.toml" or "default"
    too_few_items: tuple[tuple[str, str], ...] = ()  # (profile, "fail" | "warn") where a profile sets it

    def describe(self) -> str:
        looks = "off" if len(self.looks) == 1 else "[" + ", ".join(f"{f:g}" for f in self.looks) + "]"
        correction = (
            f" (family alpha {self.family_alpha:g}, m = {self.blocking_dimensions})"
            if self.multiplicity == "bonferroni"
            else ""
        )
        if len(self.looks) > 1:
            looks += f" (interim alpha {self.interim_alpha:g}, min {self.min_look_items} items)"
        return (
            f"rule {self.rule}, scenario checks {self.scenario_checks}, multiplicity {self.multiplicity}"
            f"{correction}, looks {looks}, inconclusive {self.inconclusive}"
            + "".join(f", too few items at {profile}: {mode}" for profile, mode in self.too_few_items)
        )


def _checked_looks(value) -> tuple[float, ...]:
    looks = tuple(float(f) for f in value)
    if not looks or abs(looks[-1] - 1.0) > 1e-12 or any(b <= a for a, b in itertools.pairwise(looks)):
        raise SystemExit(f"gate_calibration: [gate] looks must increase and end at 1.0, got {list(value)}")
    if any(f <= 0 for f in looks):
        raise SystemExit(f"gate_calibration: [gate] looks must be positive fractions, got {list(value)}")
    return looks


def load_gate(path: Path) -> tuple[Thresholds, GateSettings]:
    """thresholds.toml: the Thresholds (sizes, margins) and the [gate] policy of the new keys.

    The new [gate] keys are read from the file whether or not this checkout's trustgate.gate.policy
    knows them yet (unknown to it: removed before its strict validation, read here); a key the file
    does not set takes trustgate's default where trustgate has the key, else NEW_GATE_KEYS."""
    import tomllib

    from trustgate.gate.policy import GateDefaults

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"gate_calibration: cannot read {path}: {exc}") from exc
    gate = dict(raw.get("gate", {}))
    known = set(GateDefaults.model_fields)
    extra = {key: gate.pop(key) for key in list(gate) if key in NEW_GATE_KEYS and key not in known}
    from pydantic import ValidationError

    try:
        thresholds = Thresholds.model_validate({**raw, "gate": gate})
    except ValidationError as exc:  # the gate's own validation: name the key, as the gate does
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SystemExit(f"gate_calibration: {path}: {where}: {first['msg']} (got {first.get('input')!r})") from exc
    values, source = {}, {}
    for key, fallback in NEW_GATE_KEYS.items():
        if key in extra or key in raw.get("gate", {}):
            values[key], source[key] = raw["gate"][key], "thresholds.toml"
        elif key in known:
            values[key], source[key] = getattr(thresholds.gate, key), "trustgate default"
        else:
            values[key], source[key] = fallback, "issue-11 default"
    for key, allowed in CHOICES.items():
        if values[key] not in allowed:
            raise SystemExit(f"gate_calibration: [gate] {key} = {values[key]!r}; choose one of {', '.join(allowed)}")
    family_alpha = float(values["family_alpha"])
    interim_alpha = float(values["interim_alpha"])
    if not (0 < family_alpha < 1 and 0 < interim_alpha < 1):
        raise SystemExit("gate_calibration: [gate] family_alpha and interim_alpha must lie in (0, 1)")
    settings = GateSettings(
        rule=thresholds.gate.rule,
        confidence=thresholds.gate.confidence,
        inconclusive=thresholds.gate.inconclusive,
        scenario_checks=str(values["scenario_checks"]),
        multiplicity=str(values["multiplicity"]),
        family_alpha=family_alpha,
        looks=_checked_looks(values["looks"]),
        interim_alpha=interim_alpha,
        min_look_items=int(values["min_look_items"]),
        blocking_dimensions=family_size("overall", thresholds),
        source=source,
        too_few_items=tuple(
            (name, str(profile.too_few_items))
            for name, profile in thresholds.profiles.items()
            if getattr(profile, "too_few_items", None)
        ),
    )
    return thresholds, settings


@dataclass(frozen=True)
class Policy:
    """A candidate default: the rule, each check's one-sided error, which checks block, multiplicity,
    the looks of early stopping and the statistical INCONCLUSIVE."""

    key: str
    label: str
    rule: str  # point | drop_proven | safety_proven
    alpha: float = 0.025  # one-sided level per check without a correction (0.025: the 95% interval)
    blocking: str = "all"  # all: every scenario and overall check; overall: one check per dimension
    multiplicity: str = "none"  # none | bonferroni | holm (over the blocking checks, family_alpha)
    looks: tuple[float, ...] = (1.0,)  # early stopping: fractions of the sample keys, the last 1.0
    interim_alpha: float = 0.01
    min_look_items: int = 20
    look_minimum: str = "total"  # min_look_items counts the scope's items ("total") or each scenario's
    statistical_inconclusive: bool = False  # INCONCLUSIVE when the interval straddles the margin
    inconclusive_blocks: bool = True  # inconclusive = "fail"
    # per profile: does an INCONCLUSIVE for too few items block (default: as inconclusive_blocks)
    too_few_items_blocks: tuple[tuple[str, bool], ...] = ()
    family_alpha: float = FAMILY_ALPHA
    family: int | None = None  # m of the correction (None: the whole gate's blocking checks)
    per_check_rules: bool = False  # each check's rule from thresholds.toml (the default policy)

    @property
    def m(self) -> int:
        return self.family if self.family is not None else family_size(self.blocking)

    def interval_alpha(self) -> float:
        """One-sided level of each check's final interval (Holm: its first, smallest, threshold)."""
        if self.multiplicity in ("bonferroni", "holm"):
            return bonferroni_alpha(self.family_alpha, self.m)
        return self.alpha

    def per_check_alpha(self) -> float:
        """One-sided level of the drop rule (point: the estimate itself, 0.5)."""
        return 0.5 if self.rule == "point" else self.interval_alpha()

    def interim_level(self, looks_taken: int) -> float:
        """Two-sided alpha of one interim look: interim_alpha over the interim looks taken and,
        under a family-wise correction, over the family too (trustgate.gate.policy.interim_confidence)."""
        family = self.m if self.multiplicity in ("bonferroni", "holm") else 1
        return self.interim_alpha / (looks_taken * family)

    def too_few_blocks(self, profile: str) -> bool:
        # "ci-grown" is the ci profile at other limits: its too_few_items setting applies
        return dict(self.too_few_items_blocks).get(profile.removesuffix("-grown"), self.inconclusive_blocks)

    def interim_quantiles(self) -> set[float]:
        """The quantiles an interim look may need: interim_level(k) two-sided, k = the looks taken."""
        out: set[float] = set()
        for k in range(1, len(self.looks)):
            a = self.interim_level(k)
            out |= {a / 2, 1 - a / 2}
        return out


def policy_from_settings(settings: GateSettings, key: str = "default") -> Policy:
    return Policy(
        key=key,
        label=f"thresholds.toml: {settings.describe()}",
        rule=settings.rule,
        alpha=(1 - settings.confidence) / 2,
        blocking="overall" if settings.scenario_checks == "informational" else "all",
        multiplicity=settings.multiplicity,
        looks=settings.looks,
        interim_alpha=settings.interim_alpha,
        min_look_items=settings.min_look_items,
        look_minimum="per_scenario",  # as trustgate.gate.check counts it
        statistical_inconclusive=True,
        inconclusive_blocks=settings.inconclusive == "fail",
        too_few_items_blocks=tuple((profile, mode == "fail") for profile, mode in settings.too_few_items),
        family_alpha=settings.family_alpha,
        family=settings.blocking_dimensions if settings.scenario_checks == "informational" else None,
        per_check_rules=True,
    )


def new_candidates(settings: GateSettings) -> list[Policy]:
    """Issue 11's candidates: {point, drop_proven} x scenario checks informational x {Bonferroni
    over the blocking dimensions, none} x {looks on (thresholds.toml's, else the issue's), off};
    drop_significant with Bonferroni, looks on and off."""
    looks_on = settings.looks if len(settings.looks) > 1 else NEW_GATE_KEYS["looks"]
    out = []
    for rule in ("point", "drop_proven", "drop_significant"):
        for multiplicity in ("bonferroni", "none") if rule != "drop_significant" else ("bonferroni",):
            for looks in (looks_on, (1.0,)):
                correction = (
                    f"Bonferroni {settings.family_alpha:g}/{settings.blocking_dimensions}"
                    if multiplicity == "bonferroni"
                    else f"{settings.confidence:.0%}"
                )
                shown = "looks " + "/".join(f"{f:g}" for f in looks) if len(looks) > 1 else "no looks"
                out.append(
                    Policy(
                        key=f"{rule}_{'bonf' if multiplicity == 'bonferroni' else 'unadj'}_"
                        f"{'looks' if len(looks) > 1 else 'fixed'}",
                        label=f"{rule}, overall only, {correction}, {shown}",
                        rule=rule,
                        alpha=(1 - settings.confidence) / 2,
                        blocking="overall",
                        multiplicity=multiplicity,
                        looks=tuple(looks),
                        interim_alpha=settings.interim_alpha,
                        min_look_items=settings.min_look_items,
                        statistical_inconclusive=True,
                        inconclusive_blocks=settings.inconclusive == "fail",
                        too_few_items_blocks=tuple(
                            (profile, mode == "fail") for profile, mode in settings.too_few_items
                        ),
                        family_alpha=settings.family_alpha,
                        family=settings.blocking_dimensions,
                    )
                )
    # the same with min_look_items counted per scenario: no interim look while any scenario of the
    # scope has fewer items (a look of a few items per scenario can be degenerate: fairness's parity
    # gap is 100 for both models below 3 parsed answers, so its interval is [0, 0] and it PASSes)
    for rule in ("point", "drop_proven", "drop_significant"):
        base = next(p for p in out if p.key == f"{rule}_bonf_looks")
        out.append(
            dataclasses.replace(
                base,
                key=f"{rule}_bonf_looks_per_scenario",
                label=base.label + f", >= {settings.min_look_items} items per scenario",
                look_minimum="per_scenario",
            )
        )
    base = next(p for p in out if p.key == "point_bonf_looks")
    out.append(
        dataclasses.replace(
            base,
            key="point_bonf_looks_per_scenario10",
            label=base.label + ", >= 10 items per scenario",
            look_minimum="per_scenario",
            min_look_items=10,
        )
    )
    return out


def legacy_policies(dimensions: int = len(NAMES), inconclusive_blocks: bool = True) -> list[Policy]:
    """The first calibration's policies (no looks, no statistical INCONCLUSIVE), for comparison."""
    policies = [
        Policy("point", "(a) point, every check blocking (the old default)", "point"),
        Policy("drop_proven", "drop_proven 95%, every check blocking", "drop_proven"),
        Policy("safety_proven", "safety_proven 95%, every check blocking", "safety_proven"),
        Policy("point_overall", "point, overall checks only blocking", "point", blocking="overall"),
        Policy("drop_proven_overall", "drop_proven 95%, overall checks only", "drop_proven", blocking="overall"),
        Policy(
            "overall_bonferroni",
            f"(c) drop_proven, overall only, Bonferroni over {dimensions} (one-sided {FAMILY_ALPHA}/{dimensions})",
            "drop_proven",
            blocking="overall",
            multiplicity="bonferroni",
        ),
        Policy(
            "overall_holm",
            "drop_proven, overall only, Holm over the dimensions",
            "drop_proven",
            blocking="overall",
            multiplicity="holm",
        ),
        Policy(
            "all_holm", "(d) drop_proven, Holm over every check", "drop_proven", blocking="all", multiplicity="holm"
        ),
    ]
    return [dataclasses.replace(p, inconclusive_blocks=inconclusive_blocks) for p in policies]


def candidate_policies(settings: GateSettings | None = None) -> list[Policy]:
    """The legacy policies, issue 11's candidates and thresholds.toml's default (key "default")."""
    if settings is None:
        settings = load_gate(REPO_ROOT / "thresholds.toml")[1]
    legacy = legacy_policies(inconclusive_blocks=settings.inconclusive == "fail")
    return [*legacy, *new_candidates(settings), policy_from_settings(settings)]


def quantile_levels_for(policies: Sequence[Policy]) -> list[float]:
    levels = {0.025, 0.975}
    for policy in policies:
        if policy.multiplicity == "holm":
            continue
        if policy.rule == "point" and not policy.statistical_inconclusive:
            continue
        alpha = policy.interval_alpha()
        if policy.statistical_inconclusive or policy.per_check_rules:
            levels |= {alpha, 1 - alpha}
        else:
            levels.add(alpha if policy.rule in ("drop_proven", "drop_significant") else 1 - alpha)
    return sorted(levels)


def interim_levels_for(policies: Sequence[Policy]) -> list[float]:
    return sorted(set().union(*(p.interim_quantiles() for p in policies)))


def looks_for(policies: Sequence[Policy]) -> tuple[float, ...]:
    """The look schedule a simulation needs: every look of every policy."""
    return tuple(sorted({round(f, 12) for p in policies for f in p.looks}))


@dataclass
class Judged:
    """Per (level, replicate, check) of the blocking checks: the verdict parts and where it stopped."""

    fail: np.ndarray  # (levels, R, checks) FAIL (drop rule, refusal bound or floor), at any look
    fail_rule: np.ndarray  # (levels, R, checks) FAIL by the drop rule alone
    inconclusive: np.ndarray  # (levels, R, checks) INCONCLUSIVE (base model does not answer, or statistical)
    blocked: np.ndarray  # (levels, R, checks) FAIL, or INCONCLUSIVE that blocks (inconclusive = "fail")
    stop: np.ndarray  # (levels, R, checks) index of the look (in result.looks) where the check stopped
    overridable: np.ndarray  # (levels, R, checks) a last-look FAIL whose interval is statistically INCONCLUSIVE
    checks: list[int]


Z80 = 0.8416212335729143  # NormalDist().inv_cdf(0.8)


def _norm_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def judge_check(
    result: SimulationResult,
    check: CheckStats,
    policy: Policy,
    rule: str,
    holm: np.ndarray | None = None,
    include_refusal: bool = True,
) -> tuple[np.ndarray, ...]:
    """One check's verdict at each (level, replicate), with the policy's looks:
    (fail, fail_rule, inconclusive, stop, overridable, too_few); too_few: the INCONCLUSIVE for too few items.

    Interim looks (all but the last; skipped when the check's scope holds fewer than
    min_look_items): two-sided intervals of the drop (bootstrap percentiles) and of the refusal
    rise (paired, normal approximation) at 1 - interim_alpha / k, k = the interim looks taken.
    FAIL when drop.low > margin or rise.low > max_refusal_rise; PASS when drop.high <= margin,
    rise.high <= max_refusal_rise, the floor holds and the look's detectable drop is at most 2 x
    margin; neither while the dense model does not answer enough; else go on.
    Last look: the rule at the policy's confidence, the refusal bound and the floor on the point
    estimates; INCONCLUSIVE when the dense model does not answer (whatever else), or, instead of a
    PASS, when the interval straddles the margin and the rule's detectable drop exceeds 2 x margin."""
    levels, replicates = check.point.shape
    margin, bound = check.margin, check.max_refusal_rise
    last = len(result.looks) - 1
    for f in policy.looks:
        if not any(abs(f - g) < 1e-9 for g in result.looks):
            raise ValueError(f"policy {policy.key}: look {f} was not simulated (looks {result.looks})")
    stopped = np.zeros((levels, replicates), dtype=bool)
    fail = np.zeros_like(stopped)
    fail_rule = np.zeros_like(stopped)
    stop = np.full((levels, replicates), last, dtype=np.int8)
    interim = [
        j
        for j, look in enumerate(check.looks)
        if any(abs(look.fraction - f) < 1e-9 for f in policy.looks[:-1])
        and (look.n_items if policy.look_minimum == "total" else look.smallest_scenario) >= policy.min_look_items
    ]
    min_answered = check.min_base_answer_rate
    for j in interim:
        look = check.looks[j]
        a = policy.interim_level(len(interim))
        low, high = look.quantile(a / 2), look.quantile(1 - a / 2)
        z = _norm_quantile(1 - a / 2)
        rise_low = look.refusal_rise - z * look.refusal_se
        rise_high = look.refusal_rise + z * look.refusal_se
        # As trustgate.gate.check.interim_decision: where dense does not answer, look further;
        # a PASS also needs the look's precision (detectable drop <= 2 x margin).
        answers = ~(look.answered < min_answered - 1e-9)[None, :]  # nan (no silent scenario): answers
        detectable = rule_detectable_drop(rule, margin, (high - low) / (2 * z), z, Z80)
        precise = (margin <= 0) | (detectable <= 2 * margin)
        # as trustgate.gate.stats.proves_failure: beyond the margin, or drop_significant's own rule
        proven = ((low > 0) & (look.point > margin)) if rule == "drop_significant" else (low > margin)
        drop_fail = proven & answers
        failing = drop_fail | ((rise_low > bound) & answers) if include_refusal else drop_fail
        passing = (high <= margin) & (rise_high <= bound) & answers & precise
        if check.floor is not None:
            passing &= look.variant_score >= check.floor
        new_fail = ~stopped & failing
        new_pass = ~stopped & ~failing & passing
        fail |= new_fail
        fail_rule |= ~stopped & drop_fail
        stop[new_fail | new_pass] = j
        stopped |= new_fail | new_pass
    going = ~stopped
    alpha = policy.interval_alpha()
    if rule == "point":
        rule_fail = check.point > margin
    elif holm is not None:
        rule_fail = holm
    elif rule == "drop_proven":
        rule_fail = result.quantile(check, alpha) > margin
    elif rule == "safety_proven":
        rule_fail = result.quantile(check, 1 - alpha) > margin
    elif rule == "drop_significant":
        rule_fail = (result.quantile(check, alpha) > 0) & (check.point > margin)
    else:
        raise ValueError(f"unknown rule {rule!r}")
    fails = rule_fail.copy()
    if include_refusal:
        fails |= refusal_fails(check, rule, alpha)
    if check.floor is not None and check.variant_score is not None:
        fails |= check.variant_score < check.floor
    base = np.broadcast_to(check.inconclusive[None, :], fails.shape)
    statistical = np.zeros_like(fails)
    if policy.statistical_inconclusive:
        low, high = result.quantile(check, alpha), result.quantile(check, 1 - alpha)
        z_c = _norm_quantile(1 - alpha)
        detectable = rule_detectable_drop(rule, margin, (high - low) / (2 * z_c), z_c, Z80)
        statistical = (low <= margin) & (margin < high) & (detectable > 2 * margin)
    fail |= going & ~base & fails
    fail_rule |= going & ~base & rule_fail
    too_few = going & ~base & ~fails & statistical
    inconclusive = (going & base) | too_few
    overridable = going & ~base & fails & statistical
    return fail, fail_rule, inconclusive, stop, overridable, too_few


def refusal_fails(check: CheckStats, rule: str, alpha: float) -> np.ndarray:
    """The last look's refusal bound, as trustgate.gate.stats.rise_fails: the estimated rise beyond
    max_refusal_rise and, under the rules that fail only on evidence, its interval at the check's
    one-sided level `alpha` above zero (normal approximation, as the interim looks' refusal interval)."""
    beyond = check.refusal_rise > check.max_refusal_rise
    if rule not in EVIDENCE_RULES or check.refusal_se is None:
        return beyond
    return beyond & (check.refusal_rise - _norm_quantile(1 - alpha) * check.refusal_se > 0)


def _holm_rule(result: SimulationResult, policy: Policy, checks: list[CheckStats]) -> np.ndarray:
    """(levels, R, checks) Holm rejections, each dimension at its level and the others at zero."""
    p = np.stack([c.p_value for c in checks], axis=-1)  # (levels, R, m)
    # the whole run's family: checks of dimensions the pool lacks count, never rejected (p = 1)
    missing = max(0, family_size(policy.blocking) - len(checks))
    rule = np.zeros_like(p, dtype=bool)
    dims = np.array([c.dimension for c in checks])
    for level in range(len(result.levels)):
        for name in np.unique(dims):
            mixed = np.where(dims == name, p[level], p[0])
            mixed = np.concatenate([mixed, np.ones((mixed.shape[0], missing))], axis=-1)
            rule[level][:, dims == name] = holm_reject(mixed, policy.family_alpha)[:, : len(checks)][:, dims == name]
    return rule


def blocking_ids(result: SimulationResult, policy: Policy) -> list[int]:
    ids = result.index(overall=True if policy.blocking == "overall" else None)
    return [i for i in ids if result.checks[i].tier == "blocking"]


def judge(result: SimulationResult, policy: Policy, include_refusal: bool = True) -> Judged:
    """Each blocking check's verdict, with each dimension's own degradation level and the others at
    zero drop (the same replicate: common random numbers), as a run that degrades one dimension."""
    ids = blocking_ids(result, policy)
    checks = [result.checks[i] for i in ids]
    if policy.multiplicity == "holm" and len(policy.looks) > 1:
        raise ValueError("Holm with early-stopping looks is not simulated")
    holm = _holm_rule(result, policy, checks) if policy.multiplicity == "holm" and checks else None
    parts = []
    for k, check in enumerate(checks):
        rule = check.rule if policy.per_check_rules else policy.rule
        parts.append(
            judge_check(result, check, policy, rule, holm[..., k] if holm is not None else None, include_refusal)
        )
    levels, replicates = len(result.levels), result.replicates
    if not parts:
        empty = np.zeros((levels, replicates, 0), dtype=bool)
        return Judged(empty, empty, empty, empty, empty.astype(np.int8), empty, ids)
    stacked = (np.stack(x, axis=-1) for x in zip(*parts, strict=True))
    fail, fail_rule, inconclusive, stop, overridable, too_few = stacked
    # The base model not answering blocks as `inconclusive` says; too few items as the profile does.
    blocked = fail | (inconclusive & ~too_few & policy.inconclusive_blocks)
    blocked |= too_few & policy.too_few_blocks(result.profile)
    return Judged(fail, fail_rule, inconclusive, blocked, stop, overridable, ids)


def judge_all_at(result: SimulationResult, policy: Policy, level: int) -> np.ndarray:
    """(R, checks) drop-rule FAILs of the blocking checks with EVERY dimension at `level` at once."""
    if policy.multiplicity != "holm":
        return judge(result, policy).fail_rule[level]
    ids = blocking_ids(result, policy)
    p = np.stack([result.checks[i].p_value[level] for i in ids], axis=-1)
    missing = max(0, family_size(policy.blocking) - len(ids))
    padded = np.concatenate([p, np.ones((p.shape[0], missing))], axis=-1)
    return holm_reject(padded, policy.family_alpha)[:, : len(ids)]


@dataclass
class Summary:
    policy: Policy
    per_check_false_alarm: float  # mean over blocking checks of FAIL or blocking INCONCLUSIVE, true drop 0
    worst_check: tuple[str, float]
    family_false_alarm: float  # any blocking FAIL or blocking INCONCLUSIVE, every dimension at zero drop
    family_fail: float  # any blocking FAIL (INCONCLUSIVE aside)
    family_false_alarm_rule: float  # the drop rule alone
    family_inconclusive: float  # any blocking check INCONCLUSIVE
    mean_fails: float  # blocking FAILs per zero-drop run, on average
    boundary_false_alarm: float  # mean over overall checks of FAIL at true drop = margin (rule only)
    family_at_margin: float  # any blocking FAIL (rule only) with every dimension exactly at its margin
    power: dict[str, list[float]]  # dimension -> P(a blocking check of it FAILs) per level
    overall_power: dict[str, list[float]]  # dimension -> P(its overall check FAILs) per level
    inconclusive: dict[str, list[float]] = field(default_factory=dict)  # P(INCONCLUSIVE, no FAIL) per level
    power_if_inconclusive_first: dict[str, list[float]] = field(default_factory=dict)  # FAIL unless INCONCLUSIVE
    items: dict[str, list[float]] = field(default_factory=dict)  # expected share of the items generated
    items_total: list[float] = field(default_factory=list)  # over every dimension, each at the level


def items_generated(result: SimulationResult, policy: Policy, judged: Judged) -> dict[str, np.ndarray]:
    """dimension -> (levels, R) items generated: a scenario's items stop at the look where the last
    blocking check that covers it stopped (its own when scenario checks block, and the overall)."""
    out = {}
    checks = [result.checks[i] for i in judged.checks]
    for name in dict.fromkeys(c.dimension for c in result.checks):
        scenarios = [c.scenario for c in result.checks if c.dimension == name and c.scenario != OVERALL]
        total = np.zeros((len(result.levels), result.replicates))
        mine = [k for k, c in enumerate(checks) if c.dimension == name]
        for scenario in scenarios:
            counts = np.asarray(result.look_items[(name, scenario)])
            covering = [k for k in mine if checks[k].scenario in (scenario, OVERALL)]
            if covering:
                stop = judged.stop[..., covering].max(axis=-1)
                total += counts[stop]
            else:
                total += counts[-1]
        out[name] = total
    return out


def summarise(result: SimulationResult, policy: Policy) -> Summary:
    judged = judge(result, policy)
    checks = [result.checks[i] for i in judged.checks]
    zero = result.levels.index(0.0)
    per_check = judged.blocked[zero].mean(axis=0)
    worst = int(np.argmax(per_check)) if len(checks) else 0
    levels = range(len(result.levels))
    power, overall_power, inconclusive, first = {}, {}, {}, {}
    dims = np.array([c.dimension for c in checks])
    is_overall = np.array([c.scenario == OVERALL for c in checks], dtype=bool)
    for name in dict.fromkeys(dims):
        mine = dims == name
        failed = [judged.fail[level][:, mine].any(axis=-1) for level in levels]
        power[name] = [float(f.mean()) for f in failed]
        overall_power[name] = [float(judged.fail[level][:, mine & is_overall].any(axis=-1).mean()) for level in levels]
        inconclusive[name] = [
            float((judged.inconclusive[level][:, mine].any(axis=-1) & ~failed[level]).mean()) for level in levels
        ]
        first[name] = [
            float((judged.fail[level] & ~judged.overridable[level])[:, mine].any(axis=-1).mean()) for level in levels
        ]
    generated = items_generated(result, policy, judged)
    full = {
        name: sum(result.look_items[(name, c.scenario)][-1] for c in result.checks
                  if c.dimension == name and c.scenario != OVERALL)
        for name in generated
    }  # fmt: skip
    items = {name: [float(g[level].mean() / full[name]) for level in levels] for name, g in generated.items()}
    items_total = [
        float(sum(g[level].mean() for g in generated.values()) / max(1, sum(full.values()))) for level in levels
    ]
    one = result.levels.index(1.0) if 1.0 in result.levels else None
    boundary = float(judged.fail_rule[one][:, is_overall].mean()) if one is not None else float("nan")
    at_margin = float(judge_all_at(result, policy, one).any(axis=-1).mean()) if one is not None else float("nan")
    return Summary(
        policy=policy,
        per_check_false_alarm=float(per_check.mean()) if len(checks) else 0.0,
        worst_check=(f"{checks[worst].dimension}/{checks[worst].scenario}", float(per_check[worst]))
        if len(checks)
        else ("", 0.0),
        family_false_alarm=float(judged.blocked[zero].any(axis=-1).mean()),
        family_fail=float(judged.fail[zero].any(axis=-1).mean()),
        family_false_alarm_rule=float(judged.fail_rule[zero].any(axis=-1).mean()),
        family_inconclusive=float(judged.inconclusive[zero].any(axis=-1).mean()),
        mean_fails=float(judged.fail[zero].sum(axis=-1).mean()),
        boundary_false_alarm=boundary,
        family_at_margin=at_margin,
        power=power,
        overall_power=overall_power,
        inconclusive=inconclusive,
        power_if_inconclusive_first=first,
        items=items,
        items_total=items_total,
    )


# -- sizes -------------------------------------------------------------------------------------


def profile_sizes(
    prepared: Mapping[str, list[Prepared]], thresholds: Thresholds, profile: str, release_sizes: str
) -> dict[tuple[str, str], int]:
    """Sample keys per scenario: the profile's limit (0 = all) on the population the pool stands for:
    the embedded probe set's sample keys ("embedded"), or the pool's own ("pool")."""
    sizes = {}
    full = _embedded_key_counts() if release_sizes == "embedded" else {}
    for name, preps in prepared.items():
        limit = thresholds.evaluation_size(profile, name).limit
        for prep in preps:
            population = full.get((name, prep.pool.scenario), prep.clusters)
            sizes[(name, prep.pool.scenario)] = min(limit, population) if limit else population
    return sizes


@functools.cache
def _embedded_key_counts() -> dict[tuple[str, str], int]:
    """Distinct sample keys of every scenario of the embedded probe sets (the release population)."""
    from trustgate.data import TrustData
    from trustgate.dimensions.registry import all_dimensions

    data = TrustData("embedded")
    counts = {}
    for name, dimension in all_dimensions().items():
        for scenario in dimension.scenarios:
            items = dimension.load(data, scenario).items
            counts[(name, scenario)] = len({item.sample_key or item.id for item in items})
    return counts


# -- reporting ----------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:5.1f}%"


def print_rules_table(summaries: Sequence[Summary], result: SimulationResult) -> None:
    print(
        f"\n[{result.profile}] false alarm at true drop 0 ({result.replicates} replicates x {result.resamples} "
        f"bootstrap resamples, {result.seconds:.0f} s)"
    )
    print(
        f"  {'policy':72s} {'per check':>9s} {'worst check':>42s} {'family':>7s} {'FAIL only':>9s} "
        f"{'rule only':>9s} {'FAILs/run':>9s} {'inconcl.':>8s} {'at margin':>9s} {'all at margin':>13s}"
    )
    for s in summaries:
        worst = f"{s.worst_check[0]} {_pct(s.worst_check[1])}"
        print(
            f"  {s.policy.label[:72]:72s} {_pct(s.per_check_false_alarm):>9s} {worst:>42s} "
            f"{_pct(s.family_false_alarm):>7s} {_pct(s.family_fail):>9s} "
            f"{_pct(s.family_false_alarm_rule):>9s} {s.mean_fails:9.2f} {_pct(s.family_inconclusive):>8s} "
            f"{_pct(s.boundary_false_alarm):>9s} {_pct(s.family_at_margin):>13s}"
        )
    print(
        "  per check: mean rate of FAIL or blocking INCONCLUSIVE over the blocking checks; family: any blocking FAIL\n"
        "  or blocking INCONCLUSIVE (the family-wise false alarm); FAIL only: any blocking FAIL (drop rule, refusal\n"
        "  bound, floor); rule only: the drop rule alone; inconcl.: any blocking check INCONCLUSIVE; at margin: FAIL\n"
        "  rate of the overall checks at true drop = margin, rule only; all at margin: any blocking FAIL (rule only)\n"
        "  when every dimension of the pool drops by exactly its margin"
    )


def print_candidates_table(summaries: Sequence[Summary], result: SimulationResult) -> None:
    """Issue 11's candidates side by side: false alarm, power, INCONCLUSIVE and items at 0 and 2x."""
    two, zero = result.levels.index(2.0), result.levels.index(0.0)
    print(f"\n[{result.profile}] candidates: zero drop, and each dimension at 2x margin")
    print(
        f"  {'policy':62s} {'family':>7s} {'FAIL only':>9s} {'inc. 0x':>7s} {'weakest power 2x':>28s} "
        f"{'inc. 2x max':>11s} {'items 0x':>8s} {'items 2x':>8s}"
    )
    for s in summaries:
        name, values = min(s.power.items(), key=lambda item: item[1][two])
        inc = max(v[two] for v in s.inconclusive.values())
        print(
            f"  {s.policy.label[:62]:62s} {_pct(s.family_false_alarm):>7s} {_pct(s.family_fail):>9s} "
            f"{_pct(s.family_inconclusive):>7s} {f'{_pct(values[two])} ({name})':>28s} {_pct(inc):>11s} "
            f"{_pct(s.items_total[zero]):>8s} {_pct(s.items_total[two]):>8s}"
        )
    print(
        "  family: any blocking FAIL or blocking INCONCLUSIVE at zero drop; inc. 0x: any blocking INCONCLUSIVE; "
        "weakest power 2x:\n  the smallest P(FAIL) over the dimensions, each at 2x margin (INCONCLUSIVE is not a "
        "detection); inc. 2x max:\n  the largest P(INCONCLUSIVE) at 2x margin over the dimensions; items: expected "
        "share of the ci items generated"
    )
    dims = list(summaries[0].power) if summaries else []
    for title, pick in (
        ("power at 2x margin (P(FAIL))", lambda s, d: s.power[d][two]),
        ("INCONCLUSIVE at 2x margin", lambda s, d: s.inconclusive[d][two]),
        ("items generated at zero drop", lambda s, d: s.items[d][zero]),
        ("items generated at 2x margin", lambda s, d: s.items[d][two]),
    ):
        print(f"\n[{result.profile}] per dimension: {title}")
        print(f"  {'policy':34s}" + "".join(f"{d[:17]:>18s}" for d in dims))
        for sm in summaries:
            print(f"  {sm.policy.key:34s}" + "".join(f"{_pct(pick(sm, d)):>18s}" for d in dims))


def print_power_table(summary: Summary, result: SimulationResult) -> None:
    from statistics import NormalDist

    header = "".join(f"{m:>7g}x" for m in result.levels)
    print(f"\n[{result.profile}] power: P(a blocking check of the dimension FAILs) -- {summary.policy.label}")
    print(f"  {'dimension':20s} {'n items':>8s} {'margin':>6s} {header}  {'detectable':>10s}")
    z = NormalDist().inv_cdf(0.975)
    looks = len(summary.policy.looks) > 1
    policy = summary.policy
    z_c = NormalDist().inv_cdf(1 - policy.interval_alpha())
    for name, values in summary.power.items():
        overall = result.checks[result.index(dimension=name, overall=True)[0]]
        row = "".join(f"{_pct(v):>8s}" for v in values)
        # the "detectable drop" the gate prints for the overall check at zero drop (the rule's, as
        # trustgate.gate.stats.detectable_drop) from its standard error
        standard_error = float(np.median(overall.width[0])) / (2 * z)
        detectable = rule_detectable_drop(policy.rule, overall.margin, standard_error, z_c, Z80)
        print(f"  {name:20s} {overall.n_items:8d} {overall.margin:6.1f} {row}  {detectable:10.2f}")
        if summary.policy.statistical_inconclusive or any(v > 0 for v in summary.inconclusive[name]):
            print(f"  {'  INCONCLUSIVE':36s}" + "".join(f"{_pct(v):>8s}" for v in summary.inconclusive[name]))
        if looks:
            print(f"  {'  items generated':36s}" + "".join(f"{_pct(v):>8s}" for v in summary.items[name]))
    print("  (columns: true drop of the dimension's overall score in margins; detectable: the median of the")
    print("  'detectable drop' the gate prints for the overall check of a zero-drop variant (80% power, its rule);")
    print("  INCONCLUSIVE: P(the dimension's verdict is INCONCLUSIVE, no FAIL); items: expected share of its ci items)")


def family_line(summary: Summary, result: SimulationResult) -> str:
    two = result.levels.index(2.0)
    worst = min(summary.power.items(), key=lambda item: item[1][two])
    return (
        f"{summary.policy.key} [{result.profile}]: family-wise false alarm {summary.family_false_alarm:.3f}, "
        f"power at 2x margin: min {worst[1][two]:.3f} ({worst[0]}), mean "
        f"{np.mean([v[two] for v in summary.power.values()]):.3f}"
    )


# -- main -------------------------------------------------------------------------------------


def load_pools(args: argparse.Namespace) -> tuple[list[Pool], str]:
    if args.records:
        return pools_from_records([Path(r) for r in args.records], args.dense, args.variant), ", ".join(args.records)
    extract = Path(args.pool)
    if not extract.exists():
        raise SystemExit(f"gate_calibration: no --records and no {extract}; run --extract first")
    shown = extract.resolve().relative_to(REPO_ROOT) if extract.resolve().is_relative_to(REPO_ROOT) else extract
    return read_extract(extract), str(shown)


def prepare_all(pools: Sequence[Pool]) -> dict[str, list[Prepared]]:
    prepared: dict[str, list[Prepared]] = {}
    for name in NAMES:
        dimension = get_dimension(name)
        mine = {p.scenario: p for p in pools if p.dimension == name}
        ordered = [mine[s] for s in dimension.scenarios if s in mine]
        if ordered:
            prepared[name] = [prepare(p, dimension) for p in ordered]
    return prepared


RECOMMENDED = "drop_proven_bonf_looks_per_scenario"  # the candidate the calibration recommends (docs/calibration.md)
UNPAIRED_CHURN = 0.2  # a dimension with no paired variant in the pool (more than gptq4 showed where measured)


def estimate_churn(prepared: Mapping[str, list[Prepared]], fixed: float | None) -> dict[str, float]:
    """Churn per dimension: `fixed` when given, else the paired variant's moment estimate, else
    UNPAIRED_CHURN."""
    churn = {}
    for name, preps in prepared.items():
        observed = sum(churn_moment(p)[0] for p in preps)
        expected = sum(churn_moment(p)[1] for p in preps)
        if fixed is not None:
            churn[name] = fixed
        elif expected <= 0:
            churn[name] = UNPAIRED_CHURN
        else:
            churn[name] = float(min(1.0, observed / expected))
    return churn


def verify_true_drops(prepared, churn, thresholds, seed: int) -> float:
    """Largest |Monte Carlo true drop - target| over scenarios at 2x margin, with the real metrics."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for name, preps in prepared.items():
        dimension = get_dimension(name)
        weights = combine_weights(dimension, [p.pool.scenario for p in preps])
        capacity = np.array([p.capacity for p in preps])
        for multiplier in (0.0, 2.0):
            targets, _ = scenario_drops(capacity, weights, multiplier * thresholds.policy(name).margin)
            for prep, target in zip(preps, targets, strict=True):
                share = min(1.0, target / prep.metric) if prep.metric > 0 else 0.0
                copies = max(1, 200_000 // prep.pool.n)
                drop = true_drop_monte_carlo(prep, dimension, churn.get(name, 0.0), share, rng, copies)
                worst = max(worst, abs(drop - target))
    return worst


def needed_limits(
    result: SimulationResult,
    policy: Policy,
    thresholds: Thresholds,
    prepared: Mapping[str, list[Prepared]],
    population: Mapping[tuple[str, str], int],
    power: float = 0.8,
) -> dict[str, tuple[int, int, bool]]:
    """Per dimension: (ci limit now, the limit that detects a drop of 2x margin on its overall score
    with `power` under `policy`, whether the population caps it). Normal approximation: the overall
    check's 95% interval width at the 2x level gives its standard error, which falls as 1/sqrt(n)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - policy.per_check_alpha()) + NormalDist().inv_cdf(power)
    two = result.levels.index(2.0)
    out = {}
    for name, preps in prepared.items():
        check = result.checks[result.index(dimension=name, overall=True)[0]]
        standard_error = float(np.median(check.width[two])) / (2 * NormalDist().inv_cdf(0.975))
        wanted = (check.true_drop[two] - check.margin) / z
        limit = thresholds.evaluation_size("ci", name).limit
        factor = (standard_error / wanted) ** 2 if wanted > 0 and standard_error > 0 else math.inf
        ceiling = max(population[(name, p.pool.scenario)] for p in preps)
        needed = min(ceiling, max(1, math.ceil(limit * factor))) if math.isfinite(factor) else ceiling
        out[name] = (limit, needed, needed >= ceiling and limit * factor > ceiling)
    return out


def sizes_with_limits(prepared, population, limits: Mapping[str, int]) -> dict[tuple[str, str], int]:
    return {
        (name, p.pool.scenario): min(limits[name], population[(name, p.pool.scenario)])
        for name, preps in prepared.items()
        for p in preps
    }


def items_of(prepared, sizes) -> dict[str, int]:
    return {
        name: int(sum(sizes[(name, p.pool.scenario)] * p.pool.n / p.clusters for p in preps))
        for name, preps in prepared.items()
    }


def synthetic_runs(prep: Prepared, dimension: Dimension, rng, clusters: int, churn: float, share: float):
    """One replicate's dense and variant ScenarioRun, as the engine makes them, for the real compare()."""
    from trustgate.dimensions.base import Item
    from trustgate.engine import Decoding
    from trustgate.evaluation.evaluator import ScenarioRun

    items = draw_items(prep, rng, 1, clusters)[0]
    source = churn_sources(prep, items, rng, churn, CHURN_UNIT)
    hit = rng.random(items.shape) < share
    structure = {key: values[items] for key, values in prep.pool.structure.items()}
    dense = {key: values[items] for key, values in prep.pool.dense.items()}
    variant = {key: values[source] for key, values in prep.pool.dense.items()}
    variant[prep.layout.value] = np.where(hit, prep.worst[items], variant[prep.layout.value])
    variant["refusal"] = np.where(hit, 0.0, variant["refusal"])
    if "parsed" in variant:
        variant["parsed"] = np.where(hit, 1.0, variant["parsed"])
    per_key = prep.items_per_key
    ids = tuple(
        Item(id=f"{prep.pool.scenario}-{i}", messages=(), sample_key=f"{prep.pool.scenario}-key{i // per_key}")
        for i in range(len(items))
    )

    def run(model: str, values: dict[str, np.ndarray]) -> ScenarioRun:
        columns = {**structure, **values}
        return ScenarioRun(
            dimension=dimension.name,
            scenario=prep.pool.scenario,
            model=model,
            fingerprint=model,
            items=ids,
            responses=(("",),) * len(ids),
            outcomes=(),
            score=float(dimension.metric(columns)),
            source="simulation",
            partial=None,
            decoding=Decoding(max_new_tokens=1),
            columns=columns,
        )

    return run("dense", dense), run("variant", variant)


def validate(args: argparse.Namespace) -> None:
    """The simulated FAIL rates beside those of trustgate.gate.compare() on the same kind of variants
    (same pool, churn, sizes and degradation; independent draws; both with --resamples resamples)."""
    from trustgate.gate.compare import compare
    from trustgate.gate.multiplicity import two_sided_confidence
    from trustgate.gate.stats import decide

    thresholds, _ = load_gate(Path(args.thresholds))
    pools, source = load_pools(args)
    prepared = prepare_all(pools)
    churn = estimate_churn(prepared, args.churn)
    name = args.validate
    mine = {name: prepared[name]}
    dimension = get_dimension(name)
    sizes = profile_sizes(mine, thresholds, "ci", args.release_sizes)
    bonferroni = FAMILY_ALPHA / family_size("overall")
    confidences = {"95%": 0.95, f"one-sided {bonferroni:.4f}": two_sided_confidence(bonferroni)}
    multipliers = (0.0, 2.0)
    result = simulate(
        mine, thresholds, "ci", sizes, churn, args.replicates, args.resamples, args.seed,
        sorted({0.025, 0.975, bonferroni}), multipliers,
    )  # fmt: skip
    print(f"validate {name}: pool {source}, churn {churn[name]:.3f}, ci sizes, true drop 0 and 2x margin")
    print(f"  simulation: {args.replicates} replicates x {args.resamples} resamples ({result.seconds:.0f} s)")
    rng = np.random.default_rng(args.seed + 99)
    preps = prepared[name]
    scenarios = [p.pool.scenario for p in preps]
    weights = combine_weights(dimension, scenarios)
    capacity = np.array([p.capacity for p in preps])
    rules = [("point", "95%"), ("drop_proven", "95%"), ("drop_proven", next(iter(confidences.keys() - {"95%"})))]
    fails = {(rule, level, check): 0 for rule in rules for level in multipliers for check in (0, 1)}
    started = time.perf_counter()
    for multiplier in multipliers:
        targets, _ = scenario_drops(capacity, weights, multiplier * thresholds.policy(name).margin)
        for _ in range(args.validate_replicates):
            runs = [
                synthetic_runs(p, dimension, rng, sizes[(name, p.pool.scenario)], churn[name], t / p.metric)
                if p.metric > 0
                else synthetic_runs(p, dimension, rng, sizes[(name, p.pool.scenario)], churn[name], 0.0)
                for p, t in zip(preps, targets, strict=True)
            ]
            dense = {s: r[0] for s, r in zip(scenarios, runs, strict=True)}
            variant = {s: r[1] for s, r in zip(scenarios, runs, strict=True)}
            for label, confidence in confidences.items():
                update = {"confidence": confidence, "bootstrap_resamples": args.resamples, "rule": "drop_proven"}
                policy = thresholds.policy(name).model_copy(update=update)
                one = scenarios[0]
                judged = [
                    compare(dimension, one, {one: dense[one]}, {one: variant[one]}, policy),
                    compare(dimension, OVERALL, dense, variant, policy),
                ]
                for check, c in enumerate(judged):
                    for rule, at in rules:
                        if at != label or c.inconclusive:
                            continue
                        # c was judged under drop_proven: its refusal failure needs the rise shown
                        refusal = (
                            c.refusal_rise > c.max_refusal_rise
                            if rule == "point"
                            else any(f.startswith("refusal") for f in c.failures)
                        )
                        fails[((rule, at), multiplier, check)] += refusal or not decide(
                            rule, c.drop, c.drop_interval, c.margin
                        )
    seconds = time.perf_counter() - started
    print(f"  compare(): {args.validate_replicates} replicates x {args.resamples} resamples ({seconds:.0f} s)")
    print(f"  {'rule':34s} {'check':30s} {'true drop':>9s} {'simulated':>10s} {'compare()':>10s}")
    for rule, at in rules:
        alpha = (1 - confidences[at]) / 2
        position = result.quantile_levels.index(min(result.quantile_levels, key=lambda v: abs(v - alpha)))
        for level, multiplier in enumerate(multipliers):
            for check, index in ((0, 0), (1, len(scenarios))):
                c = result.checks[index]
                fail = c.point[level] > c.margin if rule == "point" else c.quantiles[position][level] > c.margin
                fail = (fail | refusal_fails(c, rule, alpha)[level])[~c.inconclusive]
                got = fails[((rule, at), multiplier, check)] / args.validate_replicates
                label = f"{name}/{c.scenario}"
                print(
                    f"  {rule + ' ' + at:34s} {label:30s} {c.true_drop[level]:9.2f} {_pct(fail.mean()):>10s} "
                    f"{_pct(got):>10s}"
                )


def _prefix_run(run, m: int, dimension: Dimension):
    """The first m items of a ScenarioRun (a look: the first sample keys of the fixed order)."""
    columns = {key: values[:m] for key, values in run.columns.items()}
    return dataclasses.replace(
        run, items=run.items[:m], responses=run.responses[:m], columns=columns, score=float(dimension.metric(columns))
    )


def exact_sequential_verdict(dimension, dense, variant, policy: Policy, thresholds: Thresholds, prefixes, resamples):
    """The overall check's verdict under `policy`'s looks, each interval from the gate's own code:
    compare() for the drop (its paired bootstrap at the look's confidence) and the gate's interim
    refusal interval (trustgate.gate.compare.refusal_rise_interval), handed to compare() as the gate
    hands it. Returns (verdict, index of the look where it stopped)."""
    from trustgate.gate.check import interim_decision
    from trustgate.gate.compare import compare, refusal_rise_interval

    base = thresholds.policy(dimension.name)
    scenarios = list(dense)

    def scope(j: int) -> int:
        counts = [prefixes[s][j] for s in scenarios]
        return sum(counts) if policy.look_minimum == "total" else min(counts)

    interim = [j for j in range(len(policy.looks) - 1) if scope(j) >= policy.min_look_items]

    for j in interim:
        a = policy.interim_level(len(interim))
        d = {s: _prefix_run(r, prefixes[s][j], dimension) for s, r in dense.items()}
        v = {s: _prefix_run(r, prefixes[s][j], dimension) for s, r in variant.items()}
        update = {"confidence": 1 - a, "bootstrap_resamples": resamples, "rule": policy.rule}
        look_policy = base.model_copy(update=update)
        rise = refusal_rise_interval(dimension, d, v, look_policy)  # as the gate's interim look
        c = compare(dimension, OVERALL, d, v, look_policy, refusal_interval=rise)
        decision = interim_decision(c, rise)  # the gate's own interim rule
        if decision:
            return decision, j
    alpha = policy.interval_alpha()
    rule = policy.rule
    update = {"confidence": 1 - 2 * alpha, "bootstrap_resamples": resamples, "rule": rule}
    c = compare(dimension, OVERALL, dense, variant, base.model_copy(update=update))
    last = len(policy.looks) - 1
    if c.inconclusive:
        return "INCONCLUSIVE", last
    if c.failures:  # the gate's own: the rule, the refusal bound, the floor
        return "FAIL", last
    low, high = c.drop_interval.low, c.drop_interval.high
    z_c = _norm_quantile(1 - alpha)
    detectable = rule_detectable_drop(rule, c.margin, (high - low) / (2 * z_c), z_c, Z80)
    if policy.statistical_inconclusive and low <= c.margin < high and detectable > 2 * c.margin:
        return "INCONCLUSIVE", last
    return "PASS", last


def validate_looks(args: argparse.Namespace) -> None:
    """The sequential verdicts (FAIL / INCONCLUSIVE / PASS rates, items generated) of the overall
    check under policies with looks: the simulation (bootstrap percentiles for the drop, a normal
    approximation for the interim refusal interval) beside exact_sequential_verdict (compare())."""
    thresholds, settings = load_gate(Path(args.thresholds))
    pools, source = load_pools(args)
    prepared = prepare_all(pools)
    churn = estimate_churn(prepared, args.churn)
    name = args.validate
    mine = {name: prepared[name]}
    dimension = get_dimension(name)
    policies = [p for p in candidate_policies(settings) if p.key in args.validate_looks.split(",")]
    if not policies:
        raise SystemExit(f"gate_calibration: --validate-looks {args.validate_looks}: no such policy")
    sizes = profile_sizes(mine, thresholds, "ci", args.release_sizes)
    multipliers = (0.0, 2.0)
    looks = looks_for(policies)
    results = [
        simulate(
            mine, thresholds, "ci", sizes, churn, args.replicates, args.resamples, args.seed,
            quantile_levels_for(policies), multipliers, looks=looks, interim_levels=interim_levels_for(policies),
            interim_resamples=interim,
        )
        for interim in (0, args.interim_resamples or 250)
    ]  # fmt: skip
    result = results[0]
    print(f"validate looks {name}: pool {source}, churn {churn[name]:.3f}, ci sizes, true drop 0 and 2x margin")
    print(f"  simulation: {args.replicates} replicates x {args.resamples} resamples ({result.seconds:.0f} s)")
    preps = prepared[name]
    scenarios = [p.pool.scenario for p in preps]
    weights = combine_weights(dimension, scenarios)
    capacity = np.array([p.capacity for p in preps])
    prefixes = {s: result.look_items[(name, s)] for s in scenarios}
    full = sum(prefixes[s][-1] for s in scenarios)
    rng = np.random.default_rng(args.seed + 99)
    counts = {
        (p.key, m): {"FAIL": 0, "INCONCLUSIVE": 0, "PASS": 0, "items": 0.0} for p in policies for m in multipliers
    }
    started = time.perf_counter()
    for multiplier in multipliers:
        targets, _ = scenario_drops(capacity, weights, multiplier * thresholds.policy(name).margin)
        for _ in range(args.validate_replicates):
            runs = [
                synthetic_runs(p, dimension, rng, sizes[(name, p.pool.scenario)], churn[name],
                               t / p.metric if p.metric > 0 else 0.0)
                for p, t in zip(preps, targets, strict=True)
            ]  # fmt: skip
            dense = {s: r[0] for s, r in zip(scenarios, runs, strict=True)}
            variant = {s: r[1] for s, r in zip(scenarios, runs, strict=True)}
            for policy in policies:
                verdict, stop = exact_sequential_verdict(
                    dimension, dense, variant, policy, thresholds, prefixes, args.resamples
                )
                cell = counts[(policy.key, multiplier)]
                cell[verdict] += 1
                index = next(k for k, f in enumerate(result.looks) if abs(f - policy.looks[stop]) < 1e-9)
                cell["items"] += sum(prefixes[s][index] for s in scenarios) / full
    seconds = time.perf_counter() - started
    print(f"  compare(): {args.validate_replicates} replicates x {args.resamples} resamples ({seconds:.0f} s)")
    print(f"  {'policy':28s} {'true drop':>9s} {'':>12s} {'FAIL':>7s} {'INCONCL.':>8s} {'PASS':>7s} {'items':>7s}")
    overall = result.index(dimension=name, overall=True)
    rows: list[list[str]] = []

    def rates(res: SimulationResult, policy: Policy, level: int) -> tuple[float, ...]:
        judged = judge(res, policy)
        k = judged.checks.index(res.index(dimension=name, overall=True)[0])
        generated = items_generated(res, policy, judged)[name]
        fail, inc = judged.fail[level][:, k].mean(), judged.inconclusive[level][:, k].mean()
        return fail, inc, 1 - fail - inc, generated[level].mean() / full

    for policy in policies:
        for level, multiplier in enumerate(multipliers):
            sim, sim_percentile = rates(results[0], policy, level), rates(results[1], policy, level)
            cell = counts[(policy.key, multiplier)]
            n = args.validate_replicates
            exact = (cell["FAIL"] / n, cell["INCONCLUSIVE"] / n, cell["PASS"] / n, cell["items"] / n)
            drop = result.checks[overall[0]].true_drop[level]
            for label, values in (("simulated", sim), ("normal", sim_percentile), ("compare()", exact)):
                print(f"  {policy.key:28s} {drop:9.2f} {label:>12s} " + " ".join(f"{_pct(v):>7s}" for v in values))
            rows.append(
                [f"`{policy.key}`", f"{drop:.2f}"]
                + [f"{_mpct(a)} / {_mpct(b)} / {_mpct(c)}" for a, b, c in zip(sim, sim_percentile, exact, strict=True)]
            )
    if args.docs:
        section = (
            f"`{name}` (pool `{source}`), ci sizes, churn {churn[name]:.3f}: simulation {args.replicates} replicates x "
            f"{args.resamples} resamples ({result.seconds:.0f} s) / exact, compare() {args.validate_replicates} "
            f"replicates x {args.resamples} resamples ({seconds:.0f} s). Cells: simulated (percentile intervals at "
            "every look, the default) / simulated with the interim looks' normal approximation from "
            f"{args.interim_resamples or 250} resamples / compare().\n\n"
            + _md_table(["policy", "true drop", "FAIL", "INCONCLUSIVE", "PASS", "items generated"], rows)
        )
        _replace_sections(Path(args.docs), {f"validation-{name}": section})


SWEEP_KEYS = ("point", "drop_proven", "point_overall", "drop_proven_overall", "overall_bonferroni")


def run_simulation(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    thresholds, settings = load_gate(Path(args.thresholds))
    pools, source = load_pools(args)
    prepared = prepare_all(pools)
    churn = estimate_churn(prepared, args.churn)
    checks = sum(len(p) + 1 for p in prepared.values())
    print(f"pool: {source}; {sum(p.n for p in pools)} items, {len(pools)} scenarios, {len(prepared)} dimensions")
    print(f"default policy ({args.thresholds}): {settings.describe()}")
    print(f"  bootstrap unit: {RESAMPLE}; churn re-draws: {'sample keys' if CHURN_UNIT == 'sample_key' else 'items'}")
    print("  " + ", ".join(f"{k} from {v}" for k, v in settings.source.items()))
    variant = next((p.variant_model for p in pools if p.variant_model), None)
    how = f"--churn {args.churn}" if args.churn is not None else f"estimated from {variant} vs {pools[0].dense_model}"
    print(f"churn (share of items re-drawn with no net drop, {how}):")
    for name, value in churn.items():
        preps = prepared[name]
        changed = [p.pool.responses_changed for p in preps if p.pool.responses_changed is not None]
        n = sum(p.pool.n for p in preps)
        paired = any(p.pool.variant is not None for p in preps)
        extra = f", responses changed {sum(changed)}/{n}" if changed else ""
        extra += "" if paired or args.churn is not None else " (no paired variant: the default)"
        effects = [(p.pool.scenario, design_effect(p)) for p in preps]
        effects = [f"{s} {e:.2f}" for s, e in effects if e is not None]
        extra += f"; design effect of sample keys: {', '.join(effects)}" if effects else ""
        print(f"  {name:20s} churn {value:.3f}{extra}")
    mc = verify_true_drops(prepared, churn, thresholds, args.seed)
    print(f"true drop check (real metrics, Monte Carlo on 200k-item populations): max |drop - target| {mc:.3f} points")
    policies = candidate_policies(settings)
    by_key = {p.key: p for p in policies}
    if args.recommend not in by_key:
        raise SystemExit(f"gate_calibration: --recommend {args.recommend}: choose one of {', '.join(by_key)}")
    levels = quantile_levels_for(policies)
    interim_levels = interim_levels_for(policies)
    looks = looks_for(policies)
    print(
        f"checks: {checks} in the pool; multiplicity corrections use the whole gate's {family_size('all')} "
        f"checks ({settings.blocking_dimensions} blocking overall); looks simulated: {list(looks)}"
    )
    results = {}
    summaries = {}
    runs = (
        ("ci", args.replicates, args.resamples),
        ("release", args.release_replicates or max(100, args.replicates // 6), args.release_resamples),
    )
    for profile, replicates, resamples in (run for run in runs if run[0] in args.profiles.split(",")):
        sizes = profile_sizes(prepared, thresholds, profile, args.release_sizes)
        result = simulate(
            prepared, thresholds, profile, sizes, churn, replicates, resamples, args.seed + len(results), levels,
            looks=looks, interim_levels=interim_levels,
            interim_resamples=resamples if profile == "release" and args.release_interval == "normal"
            else args.interim_resamples,
            normal_final=profile == "release" and args.release_interval == "normal",
        )  # fmt: skip
        results[profile] = result
        summaries[profile] = [summarise(result, p) for p in policies]
        print_rules_table(summaries[profile], result)
        for note in result.notes:
            print(f"  note: {note}")
        chosen = [
            s for s in summaries[profile] if s.policy.key in {p.key for p in new_candidates(settings)} | {"default"}
        ]
        print_candidates_table(chosen, result)
    for profile in results:
        for summary in summaries[profile]:
            if summary.policy.key in ("point", args.recommend, "default"):
                print_power_table(summary, results[profile])
    print()
    for profile in results:
        for summary in summaries[profile]:
            print(family_line(summary, results[profile]))
    sweep = (
        churn_sweep(args, prepared, thresholds, policies, levels, interim_levels, looks)
        if args.sweep and "ci" in results
        else None
    )
    grown = {}
    if not args.no_grow and "ci" in results:
        keys = [k for k in (args.recommend, "default", *args.grow.split(",")) if k]
        for key in dict.fromkeys(keys):
            if key not in by_key:
                raise SystemExit(f"gate_calibration: --grow {key}: choose one of {', '.join(by_key)}")
            grown[key] = grow_ci_profile(
                args, prepared, thresholds, churn, results["ci"], by_key[key], levels, interim_levels, looks
            )
    seconds = time.perf_counter() - started
    if args.json:
        dump_json(Path(args.json), results, summaries, churn, source, grown, sweep, settings, seconds, args)
    if args.docs:
        write_docs(Path(args.docs), results, summaries, churn, prepared, grown, sweep, settings, seconds, args, source)
    print(f"wall time {seconds:.0f} s")
    if "ci" not in results:
        return
    best = next(s for s in summaries["ci"] if s.policy.key == "default")
    two = results["ci"].levels.index(2.0)
    weakest = min(v[two] for v in best.power.values())
    x = best.family_false_alarm
    print(f"calibration: family-wise false alarm {x:.3f} (ci), power at 2x margin {weakest:.3f} (ci)")


def needed_resamples(policy: Policy) -> int:
    """Bootstrap resamples for p-values to reach the policy's smallest threshold ((1 + 0) / (B + 1))."""
    return math.ceil(1 / policy.per_check_alpha()) if policy.rule != "point" else 1


def resolvable(policy: Policy, resamples: int) -> bool:
    return policy.multiplicity != "holm" or resamples + 1 >= needed_resamples(policy)


def churn_sweep(args, prepared, thresholds, policies, levels, interim_levels=(), looks=(1.0,)) -> dict:
    """Family-wise false alarm and the weakest dimension's power at 2x margin, ci sizes, for a
    range of churn (the same for every dimension): how much the verdicts depend on the null's noise."""
    sizes = profile_sizes(prepared, thresholds, "ci", args.release_sizes)
    values = [float(v) for v in args.sweep.split(",")]
    replicates, resamples = args.sweep_replicates, args.sweep_resamples
    shown = [p for p in policies if p.key in SWEEP_KEYS or p.statistical_inconclusive]
    out: dict = {}
    spent = 0.0
    for k, value in enumerate(values):
        churn = dict.fromkeys(prepared, value)
        result = simulate(
            prepared, thresholds, "ci", sizes, churn, replicates, resamples, args.seed + 11 + k, levels,
            (0.0, 1.0, 2.0), looks=looks, interim_levels=interim_levels, interim_resamples=args.interim_resamples,
        )  # fmt: skip
        spent += result.seconds
        out[str(value)] = {}
        for policy in shown:
            if not resolvable(policy, resamples):
                continue
            summary = summarise(result, policy)
            out[str(value)][policy.key] = (summary.family_false_alarm, min(v[2] for v in summary.power.values()))
    print(f"\n[ci, churn sweep] family-wise false alarm / weakest power at 2x margin ({replicates} replicates x ")
    print(f"{resamples} resamples per churn, {spent:.0f} s); churn = share of items re-drawn, every dimension")
    print(f"  {'policy':24s}" + "".join(f"{'churn ' + str(v):>18s}" for v in values))
    for policy in shown:
        cells = "".join(
            f"{_pct(out[str(v)][policy.key][0]):>9s}/{_pct(out[str(v)][policy.key][1]):>7s}" for v in values
        )
        print(f"  {policy.key:24s}{cells}")
    return out


def grow_ci_profile(
    args, prepared, thresholds, churn, result, policy: Policy, levels, interim_levels=(), looks=(1.0,)
) -> dict:
    """The ci limits that reach 80% power at 2x margin under `policy`: a normal approximation from
    the overall check's interval width, simulated, and refined (up to three times) from the
    simulated power where it fell short; while the family-wise false alarm exceeds 0.05, the
    dimensions that block zero-drop runs more than 0.05 / dimensions grow too (normal approximation
    of the zero-drop block rate Phi(-c / SE) brought to 0.05 / dimensions). Dimensions
    are simulated independently, so the family-wise false alarm combines them: 1 - prod(1 - P(the
    dimension blocks: FAIL or blocking INCONCLUSIVE, at zero drop))."""
    from statistics import NormalDist

    population = profile_sizes(prepared, thresholds, "release", args.release_sizes)
    needed = needed_limits(result, policy, thresholds, prepared, population)
    limits = {name: value[1] for name, value in needed.items()}
    capped = {name: value[2] for name, value in needed.items()}
    ceiling = {name: max(population[(name, p.pool.scenario)] for p in preps) for name, preps in prepared.items()}
    replicates = args.size_replicates or max(100, args.replicates // 4)
    z_alpha = NormalDist().inv_cdf(1 - policy.per_check_alpha())
    z_power = NormalDist().inv_cdf(0.8)
    power: dict[str, float] = {}
    zero_blocked: dict[str, float] = {}
    inconclusive: dict[str, float] = {}
    items_share: dict[str, tuple[float, float]] = {}
    seconds = 0.0
    todo = list(prepared)
    current = summarise(result, policy)
    two = result.levels.index(2.0)
    for name in todo:  # dimensions that already reach 80% keep their limit
        if current.power[name][two] >= 0.8:
            limits[name] = thresholds.evaluation_size("ci", name).limit
    for attempt in range(4):
        subset = {name: prepared[name] for name in todo}
        sizes = sizes_with_limits(subset, population, limits)
        check = simulate(
            subset, thresholds, "ci-grown", sizes, churn, replicates, args.resamples, args.seed + 7 + attempt, levels,
            (0.0, 2.0), looks=looks, interim_levels=interim_levels, interim_resamples=args.interim_resamples,
        )  # fmt: skip
        seconds += check.seconds
        summary = summarise(check, policy)
        judged = judge(check, policy)
        for name in todo:
            power[name] = summary.power[name][1]
            mine = [k for k, i in enumerate(judged.checks) if check.checks[i].dimension == name]
            zero_blocked[name] = float(judged.blocked[0][:, mine].any(axis=-1).mean())
            inconclusive[name] = summary.inconclusive[name][1]
            items_share[name] = (summary.items[name][0], summary.items[name][1])
        weak = [n for n in prepared if power[n] < 0.8 and limits[n] < ceiling[n]]
        # the family-wise false alarm over 1 - 0.05: grow the dimensions that block a zero-drop run
        # more than their share (0.05 / dimensions) too, by half again
        family_now = 1.0 - float(np.prod([1.0 - v for v in zero_blocked.values()]))
        noisy = [
            n
            for n in prepared
            if family_now > FAMILY_ALPHA
            and zero_blocked[n] > FAMILY_ALPHA / len(prepared)
            and limits[n] < ceiling[n]
            and n not in weak
        ]
        todo = weak + noisy
        if attempt == 3 or not todo:
            break
        for name in weak:  # the simulated power p at limit L: scale L by ((z_a + z_0.8) / (z_a + z_p))^2
            z_now = NormalDist().inv_cdf(min(max(power[name], 0.02), 0.98))
            grown = math.ceil(limits[name] * ((z_alpha + z_power) / max(z_alpha + z_now, 0.1)) ** 2)
            limits[name] = min(ceiling[name], max(grown, limits[name] + 1))
            capped[name] = limits[name] >= ceiling[name]
        share = FAMILY_ALPHA / len(prepared)
        for name in noisy:  # P(block at zero) ~ Phi(-c / SE): scale L by (z_share / z_now)^2, at least 1.25
            z_now = NormalDist().inv_cdf(1 - min(max(zero_blocked[name], 1e-4), 0.5))
            factor = (NormalDist().inv_cdf(1 - share) / max(z_now, 0.1)) ** 2
            grown = math.ceil(limits[name] * min(max(factor, 1.25), 16.0))
            limits[name] = min(ceiling[name], max(grown, limits[name] + 1))
            capped[name] = limits[name] >= ceiling[name]
    now = items_of(prepared, profile_sizes(prepared, thresholds, "ci", args.release_sizes))
    then = items_of(prepared, sizes_with_limits(prepared, population, limits))
    family = 1.0 - float(np.prod([1.0 - v for v in zero_blocked.values()]))
    print(f"\n[ci sizes for 80% power at 2x margin under {policy.key}] normal approximation from the overall")
    print(f"check's interval width, simulated, refined from the simulated power ({replicates} replicates a try, ")
    print(f"{seconds:.0f} s):")
    print(
        f"  {'dimension':20s} {'limit':>6s} {'items':>6s} {'power':>6s}   {'needed':>6s} {'items':>6s} {'power':>6s} "
        f"{'inc.2x':>6s} {'gen.0x':>6s} {'gen.2x':>6s}"
    )
    for name in prepared:
        note = "  (every item of the probe set: cannot grow further)" if capped[name] and power[name] < 0.8 else ""
        limit = thresholds.evaluation_size("ci", name).limit
        print(
            f"  {name:20s} {limit:6d} {now[name]:6d} {_pct(current.power[name][two]):>6s}   {limits[name]:6d} "
            f"{then[name]:6d} {_pct(power[name]):>6s} {_pct(inconclusive[name]):>6s} {_pct(items_share[name][0]):>6s} "
            f"{_pct(items_share[name][1]):>6s}{note}"
        )
    print(f"  prompts per model: {sum(now.values())} now, {sum(then.values())} with the needed limits")
    print(f"  family-wise false alarm with them: {family:.3f}")
    weakest = min(power.values())
    print(
        f"calibration (needed ci limits, {policy.key}): family-wise false alarm {family:.3f}, "
        f"power at 2x margin {weakest:.3f}"
    )
    return {
        "policy": policy.key,
        "label": policy.label,
        "limits": {
            name: {"now": thresholds.evaluation_size("ci", name).limit, "needed": limits[name]} for name in limits
        },
        "capped": {name: bool(value) for name, value in capped.items()},
        "items_now": now,
        "items_needed": then,
        "power_now": {name: current.power[name][two] for name in prepared},
        "power_needed": power,
        "inconclusive_needed": inconclusive,
        "items_share_needed": items_share,
        "family_false_alarm": family,
        "replicates": replicates,
        "seconds": seconds,
    }


def _summary_json(s: Summary) -> dict:
    return {
        "key": s.policy.key,
        "label": s.policy.label,
        "per_check_false_alarm": s.per_check_false_alarm,
        "worst_check": s.worst_check,
        "family_false_alarm": s.family_false_alarm,
        "family_fail": s.family_fail,
        "family_false_alarm_rule": s.family_false_alarm_rule,
        "family_inconclusive": s.family_inconclusive,
        "mean_fails": s.mean_fails,
        "boundary_false_alarm": s.boundary_false_alarm,
        "family_at_margin": s.family_at_margin,
        "power": s.power,
        "overall_power": s.overall_power,
        "inconclusive": s.inconclusive,
        "power_if_inconclusive_first": s.power_if_inconclusive_first,
        "items": s.items,
        "items_total": s.items_total,
    }


def _plain(value):
    """numpy scalars and arrays as JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dump_json(path: Path, results, summaries, churn, source, grown, sweep, settings=None, seconds=None, args=None):
    document = {
        "source": source,
        "churn": churn,
        "grown_ci": grown,
        "churn_sweep": sweep,
        "default_policy": dataclasses.asdict(settings) if settings else None,
        "seconds": seconds,
        "command": " ".join(sys.argv),
        "profiles": {},
    }
    for profile, result in results.items():
        document["profiles"][profile] = {
            "replicates": result.replicates,
            "resamples": result.resamples,
            "seconds": result.seconds,
            "levels": list(result.levels),
            "looks": list(result.looks),
            "notes": result.notes,
            "checks": [
                {
                    "check": f"{c.dimension}/{c.scenario}",
                    "n_items": c.n_items,
                    "true_drop": c.true_drop.tolist(),
                    "median_width_95": float(np.median(c.width[0])),
                }
                for c in result.checks
            ],
            "policies": [_summary_json(s) for s in summaries[profile]],
        }
    path.write_text(json.dumps(document, indent=1, default=_plain), encoding="utf-8")


def _mpct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_sections(results, summaries, churn, prepared, grown, sweep, settings, seconds, args, source) -> dict:
    """The generated parts of docs/calibration.md, from one --simulate run (no figure typed by hand)."""
    out: dict[str, str] = {}
    items = {name: sum(p.pool.n for p in preps) for name, preps in prepared.items()}
    rows = []
    for name, preps in prepared.items():
        paired = [p for p in preps if p.pool.variant is not None]
        changed = [p.pool.responses_changed for p in paired if p.pool.responses_changed is not None]
        effects = [(p.pool.scenario, design_effect(p)) for p in preps]
        rows.append(
            [
                name,
                ", ".join(p.pool.scenario for p in preps),
                str(items[name]),
                f"{churn[name]:.3f}" + ("" if paired or args.churn is not None else " (default: no paired variant)"),
                f"{sum(changed)}/{sum(p.pool.n for p in paired)}" if changed else "",
                ", ".join(f"{sc} {e:.2f}" for sc, e in effects if e is not None),
            ]
        )
    variant = next((p.pool.variant_model for ps in prepared.values() for p in ps if p.pool.variant_model), None)
    out["pool"] = (
        f"Pool `{source}`: {sum(items.values())} dense items, {sum(len(p) for p in prepared.values())} scenarios, "
        f"{len(prepared)} of {len(NAMES)} dimensions; churn estimated from {variant or 'no paired variant'} "
        f"(the design effect of sample keys: 1 + (k - 1) x the intra-key correlation of the paired differences).\n\n"
        + _md_table(
            ["dimension", "scenarios", "items", "churn", f"responses {variant} changed", "design effect"],
            rows,
            "llrrrl",
        )
    )
    out["policy"] = (
        f"Default policy read from `thresholds.toml`: {settings.describe()}.\n\n"
        + "Where each new key came from: "
        + ", ".join(f"`{k}` {v}" for k, v in settings.source.items())
        + "."
    )
    for profile, result in results.items():
        two, zero = result.levels.index(2.0), result.levels.index(0.0)
        new_keys = [p.key for p in new_candidates(settings)] + ["default"]
        chosen = [s for s in summaries[profile] if s.policy.key in new_keys]
        rows = []
        for sm in chosen:
            name, values = min(sm.power.items(), key=lambda item: item[1][two])
            rows.append([
                f"`{sm.policy.key}`" + (" (**recommended**)" if sm.policy.key == args.recommend else ""),
                _mpct(sm.family_false_alarm), _mpct(sm.family_fail), _mpct(sm.family_inconclusive),
                f"{_mpct(values[two])} ({name})", _mpct(max(v[two] for v in sm.inconclusive.values())),
                _mpct(sm.items_total[zero]), _mpct(sm.items_total[two]),
            ])  # fmt: skip
        out[f"candidates-{profile}"] = (
            f"**{profile}** ({result.replicates} replicates x {result.resamples} resamples, "
            f"{result.seconds:.0f} s):\n\n"
            + _md_table(
                [
                    "policy",
                    "family-wise false alarm",
                    "FAIL only",
                    "INCONCLUSIVE at 0",
                    "weakest power at 2x",
                    "INCONCLUSIVE at 2x (max)",
                    "items at 0",
                    "items at 2x",
                ],
                rows,
            )
        )
        dims = list(chosen[0].power) if chosen else []
        rows = [
            [f"`{sm.policy.key}`"]
            + [
                f"{_mpct(sm.power[d][two])} / {_mpct(sm.inconclusive[d][two])} / {_mpct(sm.items[d][zero])}"
                for d in dims
            ]
            for sm in chosen
        ]
        items_row = [str(result.checks[result.index(dimension=d, overall=True)[0]].n_items) for d in dims]
        out[f"dimensions-{profile}"] = _md_table(
            ["policy"] + [f"{d} ({n} items)" for d, n in zip(dims, items_row, strict=True)], rows
        )
        rows = []
        for sm in summaries[profile]:
            rows.append([
                sm.policy.label, _mpct(sm.per_check_false_alarm),
                f"{sm.worst_check[0]} {_mpct(sm.worst_check[1])}" if sm.worst_check[1] > 0 else "",
                _mpct(sm.family_false_alarm), _mpct(sm.family_fail), _mpct(sm.family_false_alarm_rule),
                f"{sm.mean_fails:.2f}", _mpct(sm.family_inconclusive), _mpct(sm.boundary_false_alarm),
                _mpct(sm.family_at_margin),
            ])  # fmt: skip
        out[f"rules-{profile}"] = f"**{profile}** ({result.replicates} x {result.resamples}):\n\n" + _md_table(
            [
                "policy",
                "per check",
                "worst check",
                "family",
                "FAIL only",
                "rule only",
                "FAILs / run",
                "INCONCLUSIVE",
                "at margin",
                "all at margin",
            ],
            rows,
            "lrlrrrrrrr",
        )
        rows = []
        for sm in summaries[profile]:
            if sm.policy.key not in ("point", args.recommend, "default"):
                continue
            for d, values in sm.power.items():
                overall = result.checks[result.index(dimension=d, overall=True)[0]]
                rows.append([f"`{sm.policy.key}`", d, str(overall.n_items), "FAIL"] + [_mpct(v) for v in values])
                if sm.policy.statistical_inconclusive:
                    rows.append(["", "", "", "INCONCLUSIVE"] + [_mpct(v) for v in sm.inconclusive[d]])
                if len(sm.policy.looks) > 1:
                    rows.append(["", "", "", "items generated"] + [_mpct(v) for v in sm.items[d]])
        out[f"power-{profile}"] = _md_table(
            ["policy", "dimension", "items", ""] + [f"{m:g}x" for m in result.levels],
            rows,
            "lllr" + "r" * len(result.levels),
        )
    if "ci" in results:
        out["recommendation"] = recommendation_text(results, summaries, grown, settings, args)
    if sweep:
        values = list(sweep)
        keys = list(next(iter(sweep.values())))
        rows = [[f"`{k}`"] + [f"{_mpct(sweep[v][k][0])} / {_mpct(sweep[v][k][1])}" for v in values] for k in keys]
        out["sweep"] = (
            f"ci, {args.sweep_replicates} replicates x {args.sweep_resamples} resamples per churn; family-wise false "
            "alarm / weakest power at 2x margin:\n\n" + _md_table(["policy"] + [f"churn {v}" for v in values], rows)
        )
    if grown:
        parts = []
        for key, g in grown.items():
            rows = [
                [d, str(g["limits"][d]["now"]), str(g["items_now"][d]), _mpct(g["power_now"][d]),
                 str(g["limits"][d]["needed"]), str(g["items_needed"][d]), _mpct(g["power_needed"][d]),
                 _mpct(g["inconclusive_needed"][d]), _mpct(g["items_share_needed"][d][0]),
                 _mpct(g["items_share_needed"][d][1])]
                for d in g["limits"]
            ]  # fmt: skip
            parts.append(
                f"*`{key}`* ({g['label']}; {g['replicates']} replicates a try, {g['seconds']:.0f} s). Prompts per "
                f"model: {sum(g['items_now'].values())} now, {sum(g['items_needed'].values())} with the needed "
                f"limits; family-wise false alarm with them {g['family_false_alarm']:.3f}, weakest power "
                f"{min(g['power_needed'].values()):.3f}.\n\n"
                + _md_table(
                    [
                        "dimension",
                        "limit now",
                        "items",
                        "power now",
                        "limit needed",
                        "items",
                        "power then",
                        "INCONCLUSIVE at 2x",
                        "items generated at 0",
                        "at 2x",
                    ],
                    rows,
                )
            )
        out["grown"] = "\n\n".join(parts)
    parts = [f"{profile} {r.seconds:.0f} s" for profile, r in results.items()]
    if grown:
        parts += [f"ci sizes ({k}) {g['seconds']:.0f} s" for k, g in grown.items()]
    out["walltime"] = (
        f"`{' '.join(['python benchmarks/gate_calibration.py', *sys.argv[1:]])}`: **{seconds:.0f} s** wall "
        f"({', '.join(parts)}; the rest: churn, true-drop check, sweep, judging), on this {os.cpu_count()}-core "
        f"machine, load average at the end {os.getloadavg()[0]:.1f}."
    )
    if "ci" in results:
        best = next(sm for sm in summaries["ci"] if sm.policy.key == "default")
        two = results["ci"].levels.index(2.0)
        weakest = min(v[two] for v in best.power.values())
        out["lastline"] = (
            f"`calibration: family-wise false alarm {best.family_false_alarm:.3f} (ci), "
            f"power at 2x margin {weakest:.3f} (ci)`"
        )
    return out


def recommendation_text(results, summaries, grown, settings, args) -> str:
    """The recommended candidate's figures beside the thresholds.toml default's, against item 3's targets."""
    lines = []
    for key in dict.fromkeys([args.recommend, "default"]):
        ci = next(sm for sm in summaries["ci"] if sm.policy.key == key)
        two, zero = results["ci"].levels.index(2.0), results["ci"].levels.index(0.0)
        name, values = min(ci.power.items(), key=lambda item: item[1][two])
        x, y = ci.family_false_alarm, values[two]
        verdict = (
            "meets both targets"
            if x <= 0.05 and y >= 0.8
            else "misses " + " and ".join(t for t, bad in (("x <= 0.05", x > 0.05), ("y >= 0.80", y < 0.8)) if bad)
        )
        role = "**Recommended**" if key == args.recommend else "The `thresholds.toml` default"
        text = (
            f"{role}: `{key}` ({ci.policy.label}). At the current ci sizes: family-wise false alarm "
            f"**{x:.3f}** (FAIL only {ci.family_fail:.3f}, INCONCLUSIVE {ci.family_inconclusive:.3f}), weakest power "
            f"at 2x margin **{y:.3f}** ({name}), INCONCLUSIVE at 2x margin at most "
            f"{max(v[two] for v in ci.inconclusive.values()):.3f}, items generated {_mpct(ci.items_total[zero])} at "
            f"zero drop and {_mpct(ci.items_total[two])} at 2x margin: it {verdict}."
        )
        if "release" in summaries:
            rel = next(sm for sm in summaries["release"] if sm.policy.key == key)
            rtwo = results["release"].levels.index(2.0)
            text += (
                f" At release sizes: false alarm {rel.family_false_alarm:.3f}, weakest power "
                f"{min(v[rtwo] for v in rel.power.values()):.3f}, items generated "
                f"{_mpct(rel.items_total[results['release'].levels.index(0.0)])} at zero drop."
            )
        if key in grown:
            g = grown[key]
            text += (
                f" With the ci limits sized for it (below): {sum(g['items_now'].values())} -> "
                f"{sum(g['items_needed'].values())} prompts per model, false alarm {g['family_false_alarm']:.3f}, "
                f"weakest power {min(g['power_needed'].values()):.3f}."
            )
        lines.append(text)
    return "\n\n".join(lines)


def write_docs(path: Path, *args) -> None:
    """Replace each `<!-- generated: NAME -->` ... `<!-- /generated -->` block of `path`."""
    _replace_sections(path, markdown_sections(*args), report_missing=True)


def _replace_sections(path: Path, sections: Mapping[str, str], report_missing: bool = False) -> None:
    import re

    text = path.read_text(encoding="utf-8")
    missing = []

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in sections:
            missing.append(name)
            return match.group(0)
        return f"<!-- generated: {name} -->\n{sections[name]}\n<!-- /generated -->"

    text = re.sub(r"<!-- generated: ([\w-]+) -->.*?<!-- /generated -->", fill, text, flags=re.S)
    path.write_text(text, encoding="utf-8")
    shown = f" (not generated here: {', '.join(missing)})" if missing and report_missing else ""
    print(f"wrote the generated sections {', '.join(k for k in sections)} of {path}{shown}")


def main(argv: Sequence[str] | None = None) -> None:
    global WORKERS, RESAMPLE, CHURN_UNIT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--simulate", action="store_true", help="simulate the gate on synthetic variants")
    mode.add_argument("--extract", nargs="+", metavar="DIR", help="write the compact pool from records folders")
    parser.add_argument("--records", nargs="+", metavar="DIR", help="records folders (default: the shipped extract)")
    parser.add_argument("--out", default=str(DEFAULT_EXTRACT), help="--extract: where to write")
    parser.add_argument("--dimensions", default=None, help="--extract: only these dimensions (complete ones)")
    parser.add_argument("--pool", default=str(DEFAULT_EXTRACT), help="the extract to simulate on without --records")
    parser.add_argument("--dense", default="dense", help="the dense model's name in the records")
    parser.add_argument("--variant", default=None, help="a paired variant in the records, for the churn")
    parser.add_argument("--replicates", type=int, default=2000, help="replicates at the ci sizes")
    parser.add_argument("--release-replicates", type=int, default=None, help="at the release sizes (replicates/6)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per check at ci")
    parser.add_argument("--release-resamples", type=int, default=250, help="bootstrap resamples at release")
    parser.add_argument(
        "--release-interval", choices=("normal", "percentile"), default="normal",
        help="release sizes: intervals from the resamples' sd (normal, default) or their percentiles",
    )  # fmt: skip
    parser.add_argument(
        "--interim-resamples", type=int, default=INTERIM_RESAMPLES,
        help="interim looks: 0 (default) percentiles of --resamples, as the last look; N: a normal approximation "
        "from N resamples (faster, more conservative on small skewed looks)",
    )  # fmt: skip
    parser.add_argument("--release-sizes", choices=("embedded", "pool"), default="embedded")
    parser.add_argument("--churn", type=float, default=None, help="fixed churn instead of the estimate")
    parser.add_argument("--recommend", default=RECOMMENDED, help="the recommended candidate (power table, ci sizes)")
    parser.add_argument("--thresholds", default=str(REPO_ROOT / "thresholds.toml"), help="the gate policy and sizes")
    parser.add_argument("--docs", default=None, help="rewrite the generated sections of this markdown file")
    parser.add_argument("--size-replicates", type=int, default=None, help="for the grown ci sizes (replicates/4)")
    parser.add_argument("--validate", metavar="DIMENSION", help="compare the simulated rates with compare()'s")
    parser.add_argument("--validate-replicates", type=int, default=100)
    parser.add_argument(
        "--validate-looks", default=None, metavar="KEYS",
        help="with --validate: the sequential verdicts of these policies beside compare()'s",
    )  # fmt: skip
    parser.add_argument("--profiles", default="ci,release", help="which sizes to simulate (ci,release)")
    parser.add_argument("--no-grow", action="store_true", help="skip the search for ci sizes")
    parser.add_argument(
        "--grow", default="", help="more policies to size the ci profile for, besides --recommend and the default"
    )
    parser.add_argument("--sweep", default="0.05,0.2,0.5", help="churn values of the sensitivity sweep ('' none)")
    parser.add_argument("--sweep-replicates", type=int, default=400)
    parser.add_argument("--sweep-resamples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=WORKERS, help="processes: dimensions simulated in parallel")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    parser.add_argument(
        "--resample", choices=RESAMPLE_UNITS, default=None,
        help="the gate's bootstrap unit in the simulation (default: [gate] resample of --thresholds)",
    )  # fmt: skip
    parser.add_argument(
        "--churn-unit", choices=RESAMPLE_UNITS, default="item",
        help="churn re-draws single items (default) or a sample key's items together (correlated changes)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    WORKERS = max(1, args.workers)
    RESAMPLE = args.resample or load_gate(Path(args.thresholds))[0].gate.resample
    CHURN_UNIT = args.churn_unit
    if args.extract:
        pools = pools_from_records([Path(d) for d in args.extract], args.dense, args.variant)
        command = "python benchmarks/gate_calibration.py --extract " + " ".join(args.extract)
        if args.dimensions:
            keep = args.dimensions.split(",")
            pools = [p for p in pools if p.dimension in keep]
            command += f" --dimensions {args.dimensions}"
        write_extract(pools, Path(args.out), command)
        size = Path(args.out).stat().st_size
        print(f"wrote {args.out}: {len(pools)} scenarios, {sum(p.n for p in pools)} items, {size / 1024:.0f} KiB")
        return
    if args.validate and args.validate_looks:
        validate_looks(args)
        return
    if args.validate:
        validate(args)
        return
    run_simulation(args)


if __name__ == "__main__":
    main()
