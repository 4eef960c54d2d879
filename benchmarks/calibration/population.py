"""A scenario of the pool as a population: its sample keys, churn donors, worst outcomes, and the
variant a replicate judges (churn with no net drop, plus a degradation that makes a known drop).

Churn (noise with no net drop): with probability `churn` an item's outcome columns are those of
another pool item of its metric group (stereotype cell, sub-task, source model, sensitive group;
singleton groups share one bucket), so the population metric is unchanged while items flip both
ways, as a re-quantised model's do. Under churn unit "sample_key" a churned key takes all its
items' outcomes from one other key, position by position (changes correlated within keys).
Degradation (the known drop): with probability p an item gets the worst outcome (score 0,
agreement 1, refusal 0; fairness: the prediction that widens the parity gap); p is set by
bisection on the population (every pool item once, the real metric) so the expected drop is the
target. A refusal rise: with probability p_r an answered item becomes a refusal, p_r making the
expected rise of the dimension's refusal metric the target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.calibration.pools import Pool
from trustgate.dimensions import get_dimension
from trustgate.dimensions.metrics import GroupedMean, ItemMetric, ParityScore, as_item_metric
from trustgate.gate.compare import _combine_coefficients


@dataclass
class ScenarioModel:
    pool: Pool
    metric: ItemMetric
    refusal: ItemMetric
    coefficient: float
    silent: bool  # a refusal carries no signal here: counts for the base answer rate
    members: np.ndarray  # (keys, items per key): item indices, key after key
    bucket_order: np.ndarray
    bucket_start: np.ndarray
    bucket_size: np.ndarray
    bucket_pos: np.ndarray
    worst: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return self.pool.n

    @property
    def keys(self) -> int:
        return self.members.shape[0]

    @property
    def per_key(self) -> int:
        return self.members.shape[1]

    def design(self) -> dict[str, np.ndarray]:
        return dict(self.pool.structure)

    def dense(self) -> dict[str, np.ndarray]:
        return {**self.pool.structure, **self.pool.dense}

    def value(self) -> str:
        return self.metric.value_columns[0]


def _buckets(pool: Pool, metric: ItemMetric) -> np.ndarray:
    """Churn bucket per item: its metric group when that has >= 2 items, else one bucket of all
    singletons (an equal-weight mean over groups keeps its expectation); a parity gap compares
    groups, so an item alone in its group keeps its outcome (a bucket of its own)."""
    n = pool.n
    group_column = metric.design_columns[0] if metric.design_columns else None
    if group_column is None or group_column not in pool.structure:
        return np.zeros(n, dtype=int)
    _, group = np.unique(pool.structure[group_column], return_inverse=True)
    sizes = np.bincount(group)
    lone = group.max() + 1 if not isinstance(metric, ParityScore) else group.max() + 1 + np.arange(n)
    return np.where(sizes[group] >= 2, group, lone)


def _worst(pool: Pool, metric: ItemMetric) -> dict[str, np.ndarray]:
    n = pool.n
    worst = {"score": np.zeros(n), "refusal": np.zeros(n)}
    if isinstance(metric, GroupedMean):
        worst[metric.value] = np.full(n, 1.0 if metric.complement else 0.0)
    elif isinstance(metric, ParityScore):
        _, group = np.unique(pool.structure[metric.sensitive], return_inverse=True)
        prediction = pool.dense[metric.prediction]
        rates = np.array([prediction[group == g].mean() for g in range(group.max() + 1)])
        worst[metric.prediction] = (group == int(np.flatnonzero(rates == rates.max())[-1])).astype(float)
        worst[metric.parsed] = np.ones(n)
    return worst


def scenario_models(pools: Sequence[Pool]) -> dict[str, list[ScenarioModel]]:
    """The pool's scenarios grouped by dimension, in the dimension's scenario order."""
    out: dict[str, list[ScenarioModel]] = {}
    for name in dict.fromkeys(p.dimension for p in pools):
        dimension = get_dimension(name)
        chosen = sorted((p for p in pools if p.dimension == name), key=lambda p: dimension.scenarios.index(p.scenario))
        weights = _combine_coefficients(dimension, tuple(p.scenario for p in chosen))
        models = []
        for pool, coefficient in zip(chosen, weights, strict=True):
            metric = as_item_metric(dimension.metric)
            sizes = np.bincount(pool.cluster)
            if not np.all(sizes == sizes[0]):
                raise SystemExit(
                    f"calibration: {name}/{pool.scenario}: sample keys of unequal size {sorted(set(sizes))}"
                )
            bucket = _buckets(pool, metric)
            order = np.argsort(bucket, kind="stable")
            counts = np.bincount(bucket)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            pos = np.empty(pool.n, dtype=int)
            pos[order] = np.arange(pool.n) - starts[bucket[order]]
            models.append(ScenarioModel(
                pool, metric, as_item_metric(dimension.refusal_metric), coefficient,
                not dimension.refusal_carries_signal(pool.scenario),
                np.argsort(pool.cluster, kind="stable").reshape(len(sizes), sizes[0]),
                order, starts[bucket], counts[bucket], pos, _worst(pool, metric),
            ))  # fmt: skip
        out[name] = models
    return out


def without_left_out(models: Sequence[ScenarioModel], left_out: Collection[str]) -> list[ScenarioModel]:
    """A dimension's scenarios less those a profile leaves out, weighted as the gate's overall
    check weights the scenarios it has (compare._combine_coefficients)."""
    kept = [model for model in models if model.pool.scenario not in left_out]
    if len(kept) == len(models) or not kept:
        return list(models)
    weights = _combine_coefficients(get_dimension(kept[0].pool.dimension), tuple(m.pool.scenario for m in kept))
    return [dataclasses.replace(model, coefficient=weight) for model, weight in zip(kept, weights, strict=True)]


def _donors(model: ScenarioModel, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random other item of each item's churn bucket (the item itself when it is alone)."""
    size = model.bucket_size[items]
    step = 1 + np.floor(rng.random(items.shape) * np.maximum(size - 1, 1)).astype(int)
    pos = np.where(size >= 2, (model.bucket_pos[items] + step) % np.maximum(size, 1), model.bucket_pos[items])
    return model.bucket_order[model.bucket_start[items] + pos]


def slots(model: ScenarioModel, drawn: np.ndarray) -> np.ndarray:
    """The pool item behind every item slot of a replicate: drawn keys (replicates, K) -> item
    indices (replicates, K x items per key), key after key. Each slot is a distinct item of the
    run: a key drawn twice stands for two similar prompts, each with its own variant answer."""
    return model.members[drawn].reshape(drawn.shape[0], -1)


def variant_columns(
    model: ScenarioModel,
    items: np.ndarray,
    rng: np.random.Generator,
    *,
    churn: float,
    unit: str = "item",
    degrade: float = 0.0,
    refuse: float = 0.0,
) -> dict[str, np.ndarray]:
    """The synthetic variant's outcome columns on the replicate's item slots (replicates, slots)."""
    shape = items.shape
    source = items.copy()
    if unit == "sample_key" and model.per_key > 1 and model.keys > 1:
        draws = shape[1] // model.per_key
        moved = np.repeat(rng.random((shape[0], draws)) < churn, model.per_key, axis=1)
        key_of = np.empty(model.n, dtype=int)
        key_of[model.members.ravel()] = np.repeat(np.arange(model.keys), model.per_key)
        drawn = key_of[items[:, :: model.per_key]]
        other = (drawn + 1 + rng.integers(0, model.keys - 1, drawn.shape)) % model.keys
        source = np.where(moved, model.members[other].reshape(shape), source)
    else:
        source = np.where(rng.random(shape) < churn, _donors(model, items, rng), source)
    columns = {name: values[source] for name, values in model.pool.dense.items()}
    if degrade > 0:
        hit = rng.random(shape) < degrade
        for name, worst in model.worst.items():
            if name in columns:
                columns[name] = np.where(hit, worst[items], columns[name])
    if refuse > 0:
        columns["refusal"] = np.where(rng.random(shape) < refuse, 1.0, columns["refusal"])
    return columns


def expected_variant(model: ScenarioModel, churn: float, unit: str, degrade: float) -> dict[str, np.ndarray]:
    """Each item's expected variant outcome (exact): churned with probability `churn` to the mean
    of its donors (its bucket's other items, or the other keys' items at its position), then
    degraded with probability `degrade` to the worst outcome."""
    expected = {}
    for name, x in model.pool.dense.items():
        if unit == "sample_key" and model.per_key > 1 and model.keys > 1:
            at_position = x[model.members]  # (keys, per key)
            donor = np.empty(model.n)
            donor[model.members] = (at_position.sum(axis=0, keepdims=True) - at_position) / (model.keys - 1)
        else:
            order = model.bucket_order
            sums = np.add.reduceat(x[order], np.unique(model.bucket_start))
            bucket_sum = sums[np.searchsorted(np.unique(model.bucket_start), model.bucket_start)]
            size = model.bucket_size
            donor = np.where(size >= 2, (bucket_sum - x) / np.maximum(size - 1, 1), x)
        value = (1 - churn) * x + churn * donor
        if name in model.worst:
            value = (1 - degrade) * value + degrade * model.worst[name]
        expected[name] = value
    return expected


def _population_drop(model: ScenarioModel, churn: float, unit: str, degrade: float) -> float:
    """The drop on the population (the pool's items repeated without end): the metric of the
    variant's expected outcome per item against dense's. A gap metric (fairness's parity) judged on
    noisy copies would grow with churn alone; the population's does not."""
    expected = expected_variant(model, churn, unit, degrade)
    return float(model.metric(model.dense()) - model.metric({**model.design(), **expected}))


def degradation_for(model: ScenarioModel, target: float, churn: float, unit: str = "item") -> tuple[float, float]:
    """(p, the drop it makes): the degradation probability whose drop on the population is
    `target` points, or p = 1 and its drop where the scenario cannot drop that far."""
    if target <= 0:
        return 0.0, _population_drop(model, churn, unit, 0.0)
    top = _population_drop(model, churn, unit, 1.0)
    if top <= target:
        return 1.0, top
    low, high = 0.0, 1.0
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if _population_drop(model, churn, unit, mid) < target else (low, mid)
    p = (low + high) / 2
    return p, _population_drop(model, churn, unit, p)


def refusal_for(model: ScenarioModel, target: float) -> float:
    """The probability of an answered item becoming a refusal whose expected rise is `target`."""
    room = 100.0 - model.refusal(model.dense())
    return float(min(1.0, target / room)) if room > 0 else 0.0


def churn_rate(models: Sequence[ScenarioModel]) -> float:
    """The churn that gives the paired variant's mean squared change (gptq4 in the shipped pool):
    E[(dense - variant)^2] = churn x E[(item - donor)^2] over the dimension's items."""
    observed = expected = 0.0
    for model in models:
        if model.pool.variant is None:
            continue
        value = model.value()
        x, xv = model.pool.dense[value], model.pool.variant[value]
        observed += float(np.sum((x - xv) ** 2))
        for start in np.unique(model.bucket_start):
            members = model.bucket_order[start : start + model.bucket_size[model.bucket_order[start]]]
            k = len(members)
            if k >= 2:
                v = x[members]
                expected += float((2 * k * np.sum(v**2) - 2 * np.sum(v) ** 2) / (k - 1))
    return float(min(1.0, observed / expected)) if expected > 0 else 0.0


def churn_for_flips(models: Sequence[ScenarioModel], flips: float) -> float:
    """The churn whose expected share of changed item scores is `flips` (the planning value)."""
    changed = []
    for model in models:
        x = model.pool.dense["score"]
        for i in range(model.n):
            size = model.bucket_size[i]
            if size >= 2:
                start = model.bucket_start[i]
                others = model.bucket_order[start : start + size]
                changed.append(float(np.mean(np.abs(x[others] - x[i]) > 1e-9) * size / (size - 1)))
            else:
                changed.append(0.0)
    share = float(np.mean(changed)) if changed else 0.0
    return float(min(1.0, flips / share)) if share > 0 else 0.0
