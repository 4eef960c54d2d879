"""Measure the gate: false-alarm rate and power of each decision rule, by simulation.

    .venv/bin/python benchmarks/gate_calibration.py --simulate [--records DIR ...] [--replicates N]
    .venv/bin/python benchmarks/gate_calibration.py --extract DIR [DIR ...] [--out FILE]

--simulate (no model; minutes): the dense model's stored per-item outcomes are the population.
Each replicate draws a scenario's items with replacement (its sample keys, as --limit picks
them) at the ci or the release size, makes synthetic variants with a KNOWN true drop, and
judges them exactly as the gate does: the dimension's own metric and combine, a paired
percentile bootstrap (items resampled together for both models, stratified by scenario for
the overall check), the margin, the refusal bound and the INCONCLUSIVE rule. It reports, per
decision rule and per candidate default policy, the false-alarm rate per check and per
variant (family-wise: any blocking FAIL in the whole run) and the power per dimension as a
function of the true drop.

The synthetic variant of a scenario, from the dense outcome of each drawn item:
  * churn (noise with no net drop): with probability `churn` the item's outcome columns are
    replaced by those of another pool item of the same metric group (stereotype cell,
    sub-task, source model, sensitive group; singleton groups share one bucket), so the
    population metric is unchanged while items flip both ways, as a re-quantised model's do.
    The churn per dimension is estimated from a paired variant in the records (gptq4 in the
    shipped extract): E[(dense - variant)^2] = churn x E[(item - donor)^2];
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
from trustgate.gate.policy import Thresholds, load_thresholds  # noqa: E402

DEFAULT_EXTRACT = REPO_ROOT / "benchmarks" / "data" / "embedded_ci_pool.json.gz"
EXTRACT_FORMAT = "trustgate-calibration-pool/1"
MULTIPLIERS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # true drop, in units of the dimension's margin
FAMILY_ALPHA = 0.05


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
class Draws:
    """One chunk of one scenario: models = dense, then one variant per degradation share."""

    boot: np.ndarray  # (models, replicates, resamples) metric of each bootstrap resample
    point: np.ndarray  # (models, replicates) metric of the drawn items
    refusal: np.ndarray  # (models, replicates) refusal rate in %
    answered: np.ndarray  # (replicates,) dense items with a scorable answer (sum of 1 - refusal)
    n: int
    items: np.ndarray | None = None  # (replicates, n) the pool items drawn


def draw_items(prep: Prepared, rng: np.random.Generator, replicates: int, clusters: int) -> np.ndarray:
    """Pool indices of each replicate's items: `clusters` sample keys drawn with replacement
    (their items together), or items one by one when sample keys differ in size."""
    if prep.cluster_members is not None:
        keys = rng.integers(0, prep.cluster_members.shape[0], size=(replicates, clusters))
        return prep.cluster_members[keys].reshape(replicates, -1)
    per_key = prep.pool.n / prep.clusters
    n = max(1, round(clusters * per_key))
    return rng.integers(0, prep.pool.n, size=(replicates, n))


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
) -> Draws:
    """Draw `replicates` samples of the scenario, make every level's variant of each, and score
    dense and variants on the drawn items (point) and on `resamples` paired bootstrap resamples.

    A resample is a vector of item counts W (multinomial, as the gate's integers(0, n, n) draws);
    every metric here is a function of per-group counts and value sums, so one matrix product
    W @ Z gives them for dense and every level at once. Z's columns: the group one-hot, its
    products with the dense and the churned value, and per level the degradation delta of the
    items degraded at that level (levels are nested); fairness adds the parsed counts.
    """
    shares = np.asarray(shares, dtype=float)
    levels, groups = len(shares), prep.groups
    items = draw_items(prep, rng, replicates, clusters)
    n = items.shape[1]
    source = np.where(rng.random(items.shape) < churn, donors(prep, items, rng), items)
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

    # W[r, j, b]: how often resample b of replicate r draws item j (the gate's integers(0, n, n))
    index = rng.integers(0, n, size=(replicates, resamples, n))
    index += (np.arange(replicates) * n)[:, None, None]
    index *= resamples
    index += np.arange(resamples)[None, :, None]
    counts = np.bincount(index.ravel(), minlength=replicates * resamples * n)
    weights = counts.reshape(replicates, n, resamples).astype(np.float32)
    boot = scores(np.matmul(z, weights))  # (levels + 1, replicates, resamples), float32
    point = scores(z.sum(axis=2, dtype=float)[..., None])[..., 0]  # (levels + 1, replicates)
    refusal_dense = prep.refusal[items]
    refusal_churned = prep.refusal[source]
    refusal = [refusal_dense.mean(axis=1)]
    refusal += [np.where(degraded[..., level], 0.0, refusal_churned).mean(axis=1) for level in range(levels)]
    return Draws(
        boot=boot,
        point=point,
        refusal=100.0 * np.stack(refusal),
        answered=(1.0 - refusal_dense).sum(axis=1),
        n=n,
        items=items,
    )


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
    inconclusive: np.ndarray  # (R,)
    width: np.ndarray  # (levels, R) width of the 95% interval
    n_items: int = 0


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

    def index(self, dimension: str | None = None, overall: bool | None = None) -> list[int]:
        return [
            i
            for i, c in enumerate(self.checks)
            if (dimension is None or c.dimension == dimension)
            and (overall is None or (c.scenario == OVERALL) == overall)
        ]


def _stats(drops, point_drop, refusal_rise, inconclusive, margin, qs) -> dict[str, np.ndarray]:
    probabilities = sorted(set(qs) | {0.025, 0.975})
    quantiles = np.quantile(drops, probabilities, axis=-1)
    at = {q: quantiles[i] for i, q in enumerate(probabilities)}
    return {
        "point": point_drop,
        "quantiles": np.stack([at[q] for q in qs]),
        "p_value": bootstrap_p_value(drops, margin),
        "refusal_rise": refusal_rise,
        "inconclusive": inconclusive,
        "width": at[0.975] - at[0.025],
    }


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
) -> SimulationResult:
    """Every check of every dimension, `replicates` times, at each true drop (multiplier x margin)."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    checks: list[CheckStats] = []
    notes: list[str] = []
    for name, preps in prepared.items():
        if dimensions is not None and name not in dimensions:
            continue
        dimension = get_dimension(name)
        scenarios = [p.pool.scenario for p in preps]
        weights = combine_weights(dimension, scenarios)
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
        collected: list[dict[str, list]] = [dict() for _ in range(len(preps) + 1)]
        widest = max(sizes[(name, s)] * (p.pool.n / p.clusters) for p, s in zip(preps, scenarios, strict=True))
        outputs = max(p.groups * (3 + len(multipliers)) + 3 + len(multipliers) for p in preps)
        chunk = int(max(1, min(replicates, chunk_budget // (resamples * max(widest, outputs)))))
        done = 0
        while done < replicates:
            reps = min(chunk, replicates - done)
            draws = [
                simulate_chunk(p, rng, reps, sizes[(name, s)], churn.get(name, 0.0), shares[:, i], resamples)
                for i, (p, s) in enumerate(zip(preps, scenarios, strict=True))
            ]
            for i, (d, prep, policy) in enumerate(zip(draws, preps, policies, strict=True)):
                answered = 100.0 * d.answered / d.n
                inconclusive = (
                    answered < policy.min_base_answer_rate - 1e-9 if prep.silent else np.zeros(reps, dtype=bool)
                )
                stats = _stats(
                    d.boot[0][None] - d.boot[1:],
                    d.point[0][None] - d.point[1:],
                    d.refusal[1:] - d.refusal[0][None],
                    inconclusive,
                    policy.margin,
                    quantile_levels,
                )
                for key, value in stats.items():
                    collected[i].setdefault(key, []).append(value)
            boot = sum(w * d.boot for w, d in zip(weights, draws, strict=True)) / weights.sum()
            point = sum(w * d.point for w, d in zip(weights, draws, strict=True)) / weights.sum()
            refusal = np.mean([d.refusal for d in draws], axis=0)
            silent = [(d, p) for d, p in zip(draws, preps, strict=True) if p.silent]
            if silent:
                answered = 100.0 * sum(d.answered for d, _ in silent) / sum(d.n for d, _ in silent)
                inconclusive = answered < overall_policy.min_base_answer_rate - 1e-9
            else:
                inconclusive = np.zeros(reps, dtype=bool)
            stats = _stats(
                boot[0][None] - boot[1:],
                point[0][None] - point[1:],
                refusal[1:] - refusal[0][None],
                inconclusive,
                overall_policy.margin,
                quantile_levels,
            )
            for key, value in stats.items():
                collected[-1].setdefault(key, []).append(value)
            done += reps
        overall_true = scenario_targets @ weights / weights.sum()
        labels = [*scenarios, OVERALL]
        for i, label in enumerate(labels):
            policy = policies[i] if label != OVERALL else overall_policy
            got = {k: np.concatenate(v, axis=-1) for k, v in collected[i].items()}
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
                    inconclusive=got["inconclusive"],
                    width=got["width"],
                    n_items=int(
                        sum(sizes[(name, s)] * p.pool.n / p.clusters for p, s in zip(preps, scenarios, strict=True))
                        if label == OVERALL
                        else sizes[(name, label)] * preps[i].pool.n / preps[i].clusters
                    ),
                )
            )
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
    )


# -- decision policies ----------------------------------------------------------------------------


def family_size(blocking: str) -> int:
    """Blocking checks of a whole run of the gate (every registered dimension), whatever the pool
    holds: the multiplicity correction of the proposed policy is fixed, so that a -k selection or a
    partial pool does not loosen it."""
    from trustgate.dimensions.registry import all_dimensions

    dimensions = all_dimensions()
    if blocking == "overall":
        return len(dimensions)
    return sum(len(d.scenarios) + 1 for d in dimensions.values())


@dataclass(frozen=True)
class Policy:
    """A candidate default: the rule, each check's one-sided error, which checks block, multiplicity."""

    key: str
    label: str
    rule: str  # point | drop_proven | safety_proven
    alpha: float = 0.025  # one-sided level per check (0.025 = the gate's 95% two-sided interval)
    blocking: str = "all"  # all: every scenario and overall check; overall: one check per dimension
    multiplicity: str = "none"  # none | bonferroni | holm (over the blocking checks, FAMILY_ALPHA)

    def per_check_alpha(self) -> float:
        """One-sided level of each check (Holm: its first, smallest, threshold)."""
        if self.rule == "point":
            return 0.5
        if self.multiplicity in ("bonferroni", "holm"):
            return bonferroni_alpha(FAMILY_ALPHA, family_size(self.blocking))
        return self.alpha


def candidate_policies(dimensions: int = len(NAMES)) -> list[Policy]:
    return [
        Policy("point", "(a) point, every check blocking (today's default)", "point"),
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


def quantile_levels_for(policies: Sequence[Policy]) -> list[float]:
    levels = {0.025, 0.975}
    for policy in policies:
        if policy.rule == "point" or policy.multiplicity == "holm":
            continue
        alpha = policy.per_check_alpha()
        levels.add(alpha if policy.rule == "drop_proven" else 1 - alpha)
    return sorted(levels)


@dataclass
class Judged:
    """Boolean FAIL per (level, replicate, check) for the blocking checks and the check list."""

    fail: np.ndarray  # (levels, R, checks) drop rule or refusal bound
    fail_rule: np.ndarray  # (levels, R, checks) drop rule only
    inconclusive: np.ndarray  # (R, checks)
    checks: list[int]


def judge(result: SimulationResult, policy: Policy, include_refusal: bool = True) -> Judged:
    """Each blocking check's FAIL, with each dimension's own degradation level and the others at
    zero drop (the same replicate: common random numbers), as a run that degrades one dimension."""
    overall_only = policy.blocking == "overall"
    ids = result.index(overall=True if overall_only else None)
    checks = [result.checks[i] for i in ids]
    levels = len(result.levels)
    if policy.rule == "point":
        rule = np.stack([c.point > c.margin for c in checks], axis=-1)
    elif policy.multiplicity == "holm":
        p = np.stack([c.p_value for c in checks], axis=-1)  # (levels, R, m)
        # the whole run's family: checks of dimensions the pool lacks count, never rejected (p = 1)
        missing = max(0, family_size(policy.blocking) - len(checks))
        rule = np.zeros_like(p, dtype=bool)
        dims = np.array([c.dimension for c in checks])
        for level in range(levels):
            for name in np.unique(dims):
                mixed = np.where(dims == name, p[level], p[0])
                mixed = np.concatenate([mixed, np.ones((mixed.shape[0], missing))], axis=-1)
                rule[level][:, dims == name] = holm_reject(mixed, FAMILY_ALPHA)[:, : len(checks)][:, dims == name]
    else:
        alpha = policy.per_check_alpha()
        q = alpha if policy.rule == "drop_proven" else 1 - alpha
        position = result.quantile_levels.index(min(result.quantile_levels, key=lambda v: abs(v - q)))
        rule = np.stack([c.quantiles[position] > c.margin for c in checks], axis=-1)
    refusal = np.stack([c.refusal_rise > c.max_refusal_rise for c in checks], axis=-1)
    inconclusive = np.stack([c.inconclusive for c in checks], axis=-1)
    fail = rule | refusal if include_refusal else rule
    return Judged(fail=fail, fail_rule=rule, inconclusive=inconclusive, checks=ids)


def judge_all_at(result: SimulationResult, policy: Policy, level: int) -> np.ndarray:
    """(R, checks) drop-rule FAILs of the blocking checks with EVERY dimension at `level` at once."""
    if policy.multiplicity != "holm":
        return judge(result, policy).fail_rule[level]
    ids = result.index(overall=True if policy.blocking == "overall" else None)
    p = np.stack([result.checks[i].p_value[level] for i in ids], axis=-1)
    missing = max(0, family_size(policy.blocking) - len(ids))
    padded = np.concatenate([p, np.ones((p.shape[0], missing))], axis=-1)
    return holm_reject(padded, FAMILY_ALPHA)[:, : len(ids)]


@dataclass
class Summary:
    policy: Policy
    per_check_false_alarm: float  # mean over blocking checks, true drop 0
    worst_check: tuple[str, float]
    family_false_alarm: float  # any blocking FAIL (rule or refusal bound), every dimension at zero drop
    family_false_alarm_rule: float  # the drop rule alone
    family_inconclusive: float  # any blocking check INCONCLUSIVE (identical for every variant)
    mean_fails: float  # blocking FAILs per zero-drop run, on average
    boundary_false_alarm: float  # mean over overall checks of FAIL at true drop = margin (rule only)
    family_at_margin: float  # any blocking FAIL (rule only) with every dimension exactly at its margin
    power: dict[str, list[float]]  # dimension -> P(a blocking check of it FAILs) per level
    overall_power: dict[str, list[float]]  # dimension -> P(its overall check FAILs) per level


def summarise(result: SimulationResult, policy: Policy) -> Summary:
    judged = judge(result, policy)
    checks = [result.checks[i] for i in judged.checks]
    zero = result.levels.index(0.0)
    per_check = judged.fail[zero].mean(axis=0)
    worst = int(np.argmax(per_check))
    any_fail = judged.fail[zero].any(axis=-1)
    power, overall_power = {}, {}
    dims = np.array([c.dimension for c in checks])
    is_overall = np.array([c.scenario == OVERALL for c in checks])
    for name in dict.fromkeys(dims):
        mine = dims == name
        power[name] = [float(judged.fail[level][:, mine].any(axis=-1).mean()) for level in range(len(result.levels))]
        overall_power[name] = [
            float(judged.fail[level][:, mine & is_overall].any(axis=-1).mean()) for level in range(len(result.levels))
        ]
    one = result.levels.index(1.0) if 1.0 in result.levels else None
    boundary = float(judged.fail_rule[one][:, is_overall].mean()) if one is not None else float("nan")
    at_margin = float(judge_all_at(result, policy, one).any(axis=-1).mean()) if one is not None else float("nan")
    return Summary(
        policy=policy,
        per_check_false_alarm=float(per_check.mean()),
        worst_check=(f"{checks[worst].dimension}/{checks[worst].scenario}", float(per_check[worst])),
        family_false_alarm=float(any_fail.mean()),
        family_false_alarm_rule=float(judged.fail_rule[zero].any(axis=-1).mean()),
        family_inconclusive=float(judged.inconclusive.any(axis=-1).mean()),
        mean_fails=float(judged.fail[zero].sum(axis=-1).mean()),
        boundary_false_alarm=boundary,
        family_at_margin=at_margin,
        power=power,
        overall_power=overall_power,
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
        f"  {'policy':72s} {'per check':>9s} {'worst check':>42s} {'family':>7s} "
        f"{'rule only':>9s} {'FAILs/run':>9s} {'inconcl.':>8s} {'at margin':>9s} {'all at margin':>13s}"
    )
    for s in summaries:
        worst = f"{s.worst_check[0]} {_pct(s.worst_check[1])}"
        print(
            f"  {s.policy.label:72s} {_pct(s.per_check_false_alarm):>9s} {worst:>42s} {_pct(s.family_false_alarm):>7s} "
            f"{_pct(s.family_false_alarm_rule):>9s} {s.mean_fails:9.2f} {_pct(s.family_inconclusive):>8s} "
            f"{_pct(s.boundary_false_alarm):>9s} {_pct(s.family_at_margin):>13s}"
        )
    print(
        "  per check: mean FAIL rate over the blocking checks; family: any blocking FAIL (drop rule or refusal "
        "bound); rule only: the drop rule alone;\n  inconcl.: any blocking check INCONCLUSIVE (the dense model's "
        "answers alone decide it); at margin: FAIL rate of the overall checks at true drop = margin, rule only;\n"
        "  all at margin: any blocking FAIL (rule only) when every dimension of the pool drops by exactly its margin"
    )


def print_power_table(summary: Summary, result: SimulationResult) -> None:
    from statistics import NormalDist

    header = "".join(f"{m:>7g}x" for m in result.levels)
    print(f"\n[{result.profile}] power: P(a blocking check of the dimension FAILs) -- {summary.policy.label}")
    print(f"  {'dimension':20s} {'n items':>8s} {'margin':>6s} {header}  {'detectable':>10s}")
    z = NormalDist().inv_cdf(0.975)
    for name, values in summary.power.items():
        overall = result.checks[result.index(dimension=name, overall=True)[0]]
        row = "".join(f"{_pct(v):>8s}" for v in values)
        # the gate's "detectable drop" of the overall check at zero drop: (z + z_0.8) x its standard error
        detectable = (z + NormalDist().inv_cdf(0.8)) * float(np.median(overall.width[0])) / (2 * z)
        print(f"  {name:20s} {overall.n_items:8d} {overall.margin:6.1f} {row}  {detectable:10.2f}")
    print("  (columns: true drop of the dimension's overall score in margins; detectable: the median of the")
    print("  'detectable drop' the gate prints for the overall check of a zero-drop variant, 95% interval)")


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
    source = np.where(rng.random(items.shape) < churn, donors(prep, items, rng), items)
    hit = rng.random(items.shape) < share
    structure = {key: values[items] for key, values in prep.pool.structure.items()}
    dense = {key: values[items] for key, values in prep.pool.dense.items()}
    variant = {key: values[source] for key, values in prep.pool.dense.items()}
    variant[prep.layout.value] = np.where(hit, prep.worst[items], variant[prep.layout.value])
    variant["refusal"] = np.where(hit, 0.0, variant["refusal"])
    if "parsed" in variant:
        variant["parsed"] = np.where(hit, 1.0, variant["parsed"])
    ids = tuple(Item(id=f"{prep.pool.scenario}-{i}", messages=()) for i in range(len(items)))

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

    thresholds = load_thresholds(REPO_ROOT / "thresholds.toml")
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
                        refusal = c.refusal_rise > c.max_refusal_rise
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
                fail = (fail | (c.refusal_rise[level] > c.max_refusal_rise))[~c.inconclusive]
                got = fails[((rule, at), multiplier, check)] / args.validate_replicates
                label = f"{name}/{c.scenario}"
                print(
                    f"  {rule + ' ' + at:34s} {label:30s} {c.true_drop[level]:9.2f} {_pct(fail.mean()):>10s} "
                    f"{_pct(got):>10s}"
                )


def run_simulation(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    thresholds = load_thresholds(REPO_ROOT / "thresholds.toml")
    pools, source = load_pools(args)
    prepared = prepare_all(pools)
    churn = estimate_churn(prepared, args.churn)
    checks = sum(len(p) + 1 for p in prepared.values())
    print(f"pool: {source}; {sum(p.n for p in pools)} items, {len(pools)} scenarios, {len(prepared)} dimensions")
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
    policies = candidate_policies()
    levels = quantile_levels_for(policies)
    print(
        f"checks: {checks} in the pool; multiplicity corrections use the whole gate's {family_size('all')} "
        f"checks ({family_size('overall')} overall)"
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
            prepared, thresholds, profile, sizes, churn, replicates, resamples, args.seed + len(results), levels
        )
        results[profile] = result
        summaries[profile] = [summarise(result, p) for p in policies]
        print_rules_table(summaries[profile], result)
        for note in result.notes:
            print(f"  note: {note}")
    for profile in results:
        for summary in summaries[profile]:
            if summary.policy.key in ("point", "drop_proven", args.recommend, "all_holm"):
                print_power_table(summary, results[profile])
    print()
    for profile in results:
        for summary in summaries[profile]:
            print(family_line(summary, results[profile]))
    sweep = churn_sweep(args, prepared, thresholds, policies, levels) if args.sweep and "ci" in results else None
    grown = {}
    if not args.no_grow and "ci" in results:
        for key in dict.fromkeys([*args.grow.split(","), args.recommend]):
            policy = next(p for p in policies if p.key == key)
            grown[key] = grow_ci_profile(args, prepared, thresholds, churn, results["ci"], policy, levels)
    if args.json:
        dump_json(Path(args.json), results, summaries, churn, source, grown, sweep)
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if "ci" not in results:
        return
    best = next(s for s in summaries["ci"] if s.policy.key == args.recommend)
    two = results["ci"].levels.index(2.0)
    weakest = min(v[two] for v in best.power.values())
    x = best.family_false_alarm
    print(f"calibration: family-wise false alarm {x:.3f} (ci), power at 2x margin {weakest:.3f} (ci)")


def needed_resamples(policy: Policy) -> int:
    """Bootstrap resamples for p-values to reach the policy's smallest threshold ((1 + 0) / (B + 1))."""
    return math.ceil(1 / policy.per_check_alpha()) if policy.rule != "point" else 1


def resolvable(policy: Policy, resamples: int) -> bool:
    return policy.multiplicity != "holm" or resamples + 1 >= needed_resamples(policy)


def churn_sweep(args, prepared, thresholds, policies, levels) -> dict:
    """Family-wise false alarm and the weakest dimension's power at 2x margin, ci sizes, for a
    range of churn (the same for every dimension): how much the verdicts depend on the null's noise."""
    sizes = profile_sizes(prepared, thresholds, "ci", args.release_sizes)
    values = [float(v) for v in args.sweep.split(",")]
    replicates, resamples = args.sweep_replicates, args.sweep_resamples
    out: dict = {}
    spent = 0.0
    for k, value in enumerate(values):
        churn = dict.fromkeys(prepared, value)
        result = simulate(
            prepared, thresholds, "ci", sizes, churn, replicates, resamples, args.seed + 11 + k, levels, (0.0, 1.0, 2.0)
        )
        spent += result.seconds
        out[str(value)] = {}
        for policy in policies:
            if not resolvable(policy, resamples):
                continue
            summary = summarise(result, policy)
            out[str(value)][policy.key] = (summary.family_false_alarm, min(v[2] for v in summary.power.values()))
    print(f"\n[ci, churn sweep] family-wise false alarm / weakest power at 2x margin ({replicates} replicates x ")
    print(f"{resamples} resamples per churn, {spent:.0f} s); churn = share of items re-drawn, every dimension")
    print(f"  {'policy':24s}" + "".join(f"{'churn ' + str(v):>18s}" for v in values))
    for policy in policies:
        if not resolvable(policy, resamples):
            print(
                f"  {policy.key:24s}  n/a: Holm's smallest threshold needs {needed_resamples(policy)} resamples or more"
            )
            continue
        cells = "".join(
            f"{_pct(out[str(v)][policy.key][0]):>9s}/{_pct(out[str(v)][policy.key][1]):>7s}" for v in values
        )
        print(f"  {policy.key:24s}{cells}")
    return out


def grow_ci_profile(args, prepared, thresholds, churn, result, policy: Policy, levels) -> dict:
    """The ci limits that reach 80% power at 2x margin under `policy`: a normal approximation from
    the overall check's interval width, simulated, and refined (up to three times) from the
    simulated power where it fell short. Dimensions are simulated independently, so the family-wise false alarm combines
    them: 1 - prod(1 - P(a blocking check of the dimension FAILs at zero drop))."""
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
    zero_fail: dict[str, float] = {}
    seconds = 0.0
    todo = list(prepared)
    for attempt in range(4):
        subset = {name: prepared[name] for name in todo}
        sizes = sizes_with_limits(subset, population, limits)
        check = simulate(
            subset, thresholds, "ci-grown", sizes, churn, replicates, args.resamples, args.seed + 7 + attempt, levels,
            (0.0, 2.0),
        )  # fmt: skip
        seconds += check.seconds
        summary = summarise(check, policy)
        for name in todo:
            power[name] = summary.power[name][1]
            zero_fail[name] = summary.power[name][0]
        todo = [n for n in todo if power[n] < 0.8 and limits[n] < ceiling[n]]
        if attempt == 3 or not todo:
            break
        for name in todo:  # the simulated power p at limit L: scale L by ((z_a + z_0.8) / (z_a + z_p))^2
            z_now = NormalDist().inv_cdf(min(max(power[name], 0.02), 0.98))
            grown = math.ceil(limits[name] * ((z_alpha + z_power) / max(z_alpha + z_now, 0.1)) ** 2)
            limits[name] = min(ceiling[name], max(grown, limits[name] + 1))
            capped[name] = limits[name] >= ceiling[name]
    now = items_of(prepared, profile_sizes(prepared, thresholds, "ci", args.release_sizes))
    then = items_of(prepared, sizes_with_limits(prepared, population, limits))
    family = 1.0 - float(np.prod([1.0 - v for v in zero_fail.values()]))
    current = summarise(result, policy)
    two = result.levels.index(2.0)
    print(f"\n[ci sizes for 80% power at 2x margin under {policy.key}] normal approximation from the overall")
    print(f"check's interval width, simulated, refined from the simulated power ({replicates} replicates a try, ")
    print(f"{seconds:.0f} s):")
    print(f"  {'dimension':20s} {'limit':>6s} {'items':>6s} {'power':>6s}   {'needed':>6s} {'items':>6s} {'power':>6s}")
    for name in prepared:
        note = "  (every item of the probe set: cannot grow further)" if capped[name] and power[name] < 0.8 else ""
        limit = thresholds.evaluation_size("ci", name).limit
        print(
            f"  {name:20s} {limit:6d} {now[name]:6d} {_pct(current.power[name][two]):>6s}   {limits[name]:6d} "
            f"{then[name]:6d} {_pct(power[name]):>6s}{note}"
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
        "limits": {
            name: {"now": thresholds.evaluation_size("ci", name).limit, "needed": limits[name]} for name in limits
        },
        "capped": capped,
        "items_now": now,
        "items_needed": then,
        "power_needed": power,
        "family_false_alarm": family,
        "replicates": replicates,
    }


def dump_json(path: Path, results, summaries, churn, source, grown, sweep) -> None:
    document = {"source": source, "churn": churn, "grown_ci": grown, "churn_sweep": sweep, "profiles": {}}
    for profile, result in results.items():
        document["profiles"][profile] = {
            "replicates": result.replicates,
            "resamples": result.resamples,
            "seconds": result.seconds,
            "levels": list(result.levels),
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
            "policies": [
                {
                    "key": s.policy.key,
                    "label": s.policy.label,
                    "per_check_false_alarm": s.per_check_false_alarm,
                    "worst_check": s.worst_check,
                    "family_false_alarm": s.family_false_alarm,
                    "family_false_alarm_rule": s.family_false_alarm_rule,
                    "family_inconclusive": s.family_inconclusive,
                    "mean_fails": s.mean_fails,
                    "boundary_false_alarm": s.boundary_false_alarm,
                    "family_at_margin": s.family_at_margin,
                    "power": s.power,
                    "overall_power": s.overall_power,
                }
                for s in summaries[profile]
            ],
        }
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--simulate", action="store_true", help="simulate the gate on synthetic variants")
    mode.add_argument("--extract", nargs="+", metavar="DIR", help="write the compact pool from records folders")
    parser.add_argument("--records", nargs="+", metavar="DIR", help="records folders (default: the shipped extract)")
    parser.add_argument("--out", default=str(DEFAULT_EXTRACT), help="--extract: where to write")
    parser.add_argument("--pool", default=str(DEFAULT_EXTRACT), help="the extract to simulate on without --records")
    parser.add_argument("--dense", default="dense", help="the dense model's name in the records")
    parser.add_argument("--variant", default=None, help="a paired variant in the records, for the churn")
    parser.add_argument("--replicates", type=int, default=2000, help="replicates at the ci sizes")
    parser.add_argument("--release-replicates", type=int, default=None, help="at the release sizes (replicates/6)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per check at ci")
    parser.add_argument("--release-resamples", type=int, default=1000, help="bootstrap resamples at release")
    parser.add_argument("--release-sizes", choices=("embedded", "pool"), default="embedded")
    parser.add_argument("--churn", type=float, default=None, help="fixed churn instead of the estimate")
    parser.add_argument("--recommend", default="overall_bonferroni", help="the policy of the last line")
    parser.add_argument("--size-replicates", type=int, default=None, help="for the grown ci sizes (replicates/4)")
    parser.add_argument("--validate", metavar="DIMENSION", help="compare the simulated rates with compare()'s")
    parser.add_argument("--validate-replicates", type=int, default=100)
    parser.add_argument("--profiles", default="ci,release", help="which sizes to simulate (ci,release)")
    parser.add_argument("--no-grow", action="store_true", help="skip the search for ci sizes")
    parser.add_argument(
        "--grow", default="drop_proven_overall", help="policies to size the ci profile for, besides --recommend"
    )
    parser.add_argument("--sweep", default="0.05,0.15,0.3,0.5", help="churn values of the sensitivity sweep ('' none)")
    parser.add_argument("--sweep-replicates", type=int, default=500)
    parser.add_argument("--sweep-resamples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.extract:
        pools = pools_from_records([Path(d) for d in args.extract], args.dense, args.variant)
        command = "python benchmarks/gate_calibration.py --extract " + " ".join(args.extract)
        write_extract(pools, Path(args.out), command)
        size = Path(args.out).stat().st_size
        print(f"wrote {args.out}: {len(pools)} scenarios, {sum(p.n for p in pools)} items, {size / 1024:.0f} KiB")
        return
    if args.validate:
        validate(args)
        return
    run_simulation(args)


if __name__ == "__main__":
    main()
