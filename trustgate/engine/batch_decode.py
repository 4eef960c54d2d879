"""Streams of generation: shared prompt parts computed once, prompts read without padding,
rows leaving as they finish and new prompts, of the same stream or the next, taking their places.

Why not `model.generate`: DecodingTrust prompts of one scenario share a long system prompt and
task description (170 of ~180 tokens in the stereotype benign scenario), and in the targeted
scenario prompts about one group share a second, longer head. Here the stream's shared prefix
runs once with batch size 1, each group's head runs once, and only what is left of each prompt
runs per row.

Two row layouts (trustgate/engine/stream_rows.py) share the decode loop. For the
architectures `prefix_attention` supports, the prefix's keys and values are held once, each
row's cache is a buffer written in place, prompt segments of many rows are packed into one
sequence so that only real tokens run through the projections and MLPs (no padding), and rows
wait for a free place (at most `max_rows` rows, `max_cached_positions` cached positions, each
running prefix counted once) and join the running batch when others finish (continuous
batching); the streams of one call run through the same places one after the other, so the last
rows of one stream decode beside the first rows of the next, each attending to its own prefix.
Any other model runs on transformers' own cache with the prefix copied to every row, stream by
stream in fixed batches (layout [prefix][left padding][own suffix][generated ...], padding masked and
skipped by position ids). Both give the tokens `generate` gives one prompt at a time
(tests/test_prefix_attention.py, tests/test_continuous_batching.py).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from trustgate.engine import prefix_attention
from trustgate.engine.stream_rows import CopiedCacheRows, SharedPrefixRows
from trustgate.util.errors import ModelOutputError


@dataclass(frozen=True)
class BatchSpec:
    """Decoding of one stream: rows are prompts repeated `samples` times, consecutively."""

    max_new_tokens: int
    samples: int
    temperature: float  # <= 0: greedy
    seed: int
    stop_ids: tuple[int, ...]
    pad_id: int
    min_shared_prefix: int = 16
    # False: transformers' own cache with the prefix copied per row (the reference path).
    shared_prefix_attention: bool = True
    # Positions per forward while reading prompts; bounds activation memory.
    prefill_tokens: int = 2048
    # Rows decoded at once, and cached positions (the shared prefix counted once) of those rows;
    # None: no bound. Further rows wait and join as rows finish.
    max_rows: int | None = None
    max_cached_positions: int | None = None


@dataclass
class BatchFigures:
    """What one stream cost: the engine logs these per stream (`generate` events)."""

    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    prompt_positions: int = 0  # real prompt tokens put through the model
    padding_positions: int = 0  # padding put through the model with them
    decode_steps: int = 0
    decode_rows: int = 0  # rows summed over decode steps (rows per step = decode_rows / decode_steps)

    def add(self, other: BatchFigures) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


def _check_finite(logits: torch.Tensor, model_name: str) -> None:
    if not torch.isfinite(logits).all():
        raise ModelOutputError(
            f"model {model_name}",
            "produced NaN or infinite logits",
            "the checkpoint is broken: rebuild it (delete its cache folder) or check its dtype",
        )


def _choose(
    logits: torch.Tensor, spec: BatchSpec, generators: list[torch.Generator], batch_streams: torch.Tensor
) -> torch.Tensor:
    """Greedy, or a sample per row; each stream's rows draw from that stream's generator, so a
    stream's samples do not depend on which other streams share its decode steps' randomness."""
    if spec.temperature <= 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(logits / spec.temperature, dim=-1).cpu()
    chosen = torch.zeros(len(logits), dtype=torch.long)
    for stream in batch_streams.unique().tolist():
        rows = (batch_streams == stream).nonzero().squeeze(1)
        chosen[rows] = torch.multinomial(probabilities[rows], 1, generator=generators[stream]).squeeze(1)
    return chosen.to(logits.device)


# Called as each stream ends: the stream's index and its rows' new token ids.
StreamDone = Callable[[int, list[list[int]]], None]


@torch.inference_mode()
def generate_batch(
    model: Any, token_ids: list[list[int]], spec: BatchSpec, model_name: str, figures: BatchFigures | None = None
) -> list[list[int]]:
    """New token ids (stop token excluded) for every row: prompt i's samples at i*samples + s.
    `figures`, when given, receives the stream's timings and positions."""
    return generate_streams(model, [token_ids], spec, model_name, figures)[0]


@torch.inference_mode()
def generate_streams(
    model: Any,
    streams: list[list[list[int]]],
    spec: BatchSpec,
    model_name: str,
    figures: BatchFigures | None = None,
    seeds: list[int] | None = None,
    stream_done: StreamDone | None = None,
) -> list[list[list[int]]]:
    """`generate_batch` for several streams (prompts sharing a prefix, see plan_streams) in one
    decode loop: on the shared-prefix path rows of the next stream take the places the last rows
    of a stream leave, so decode steps stay full. `seeds[k]` seeds stream k's sampling (default
    `spec.seed`); `stream_done` hears of each stream as it ends."""
    figures = figures if figures is not None else BatchFigures()
    seeds = seeds or [spec.seed] * len(streams)
    results: list[list[list[int]]] = [[] for _ in streams]

    def done(index: int, new_tokens: list[list[int]]) -> None:
        results[index] = new_tokens
        if stream_done:
            stream_done(index, new_tokens)

    longest = max(len(ids) for token_ids in streams for ids in token_ids) + spec.max_new_tokens
    if spec.shared_prefix_attention and prefix_attention.supports(model, longest):
        with prefix_attention.prefix_attention(model):
            _decode(model, streams, spec, seeds, model_name, SharedPrefixRows, figures, done)
        return results
    # The copied-cache path holds its rows at once: per stream, consecutive fixed batches within
    # the same bounds, the prefix counted in every row (each row holds a copy).
    for index, token_ids in enumerate(streams):
        generated: list[list[int]] = []
        start = 0
        while start < len(token_ids):
            end = start + 1
            while end < len(token_ids) and _fits_copied(token_ids[start : end + 1], spec):
                end += 1
            batch = [token_ids[start:end]]
            _decode(model, batch, spec, seeds[index : index + 1], model_name, CopiedCacheRows, figures,
                    lambda _, new_tokens, into=generated: into.extend(new_tokens))  # fmt: skip
            start = end
        done(index, generated)
    return results


def _fits_copied(token_ids: list[list[int]], spec: BatchSpec) -> bool:
    rows = len(token_ids) * spec.samples
    positions = rows * (max(len(ids) for ids in token_ids) + spec.max_new_tokens)
    return rows <= (spec.max_rows or rows) and positions <= (spec.max_cached_positions or positions)


def _decode(
    model: Any,
    streams: list[list[list[int]]],
    spec: BatchSpec,
    seeds: list[int],
    model_name: str,
    kind: Any,
    figures: BatchFigures,
    stream_done: StreamDone,
) -> None:
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    started = _clock(model)
    rows = kind(model, streams, spec, figures)
    logits = rows.first_logits
    figures.prefill_seconds += _clock(model) - started
    counts = [len(token_ids) * spec.samples for token_ids in streams]
    firsts = list(itertools.accumulate(counts, initial=0))  # stream k's rows: firsts[k]..firsts[k+1]
    generated: list[list[int]] = [[] for _ in range(firsts[-1])]
    unfinished = list(counts)  # rows per stream still generating
    stream_of_row = [index for index, count in enumerate(counts) for _ in range(count)]
    stop = torch.tensor(spec.stop_ids or [-1], device=logits.device)
    finished_since_compaction = 0
    while True:
        live = rows.alive >= 0  # finished rows not yet dropped carry -1
        _check_finite(logits[live], model_name)
        chosen = _choose(logits, spec, generators, rows.batch_streams)
        stopped = torch.isin(chosen, stop) & live
        done = stopped.tolist()
        for index, (row, token, is_stop) in enumerate(zip(rows.alive.tolist(), chosen.tolist(), done, strict=True)):
            if row >= 0 and not is_stop:
                generated[row].append(token)
                done[index] = len(generated[row]) >= spec.max_new_tokens
            if row >= 0 and done[index]:
                stream = stream_of_row[row]
                unfinished[stream] -= 1
                if not unfinished[stream]:
                    stream_done(stream, generated[firsts[stream] : firsts[stream + 1]])
        still = live & ~torch.tensor(done, device=live.device)
        finished_since_compaction += int((live & ~still).sum())
        if not bool(still.any()) and not rows.waiting:
            break
        # Dropping rows copies the cache; do it once an eighth of the batch has finished.
        if finished_since_compaction * 8 >= len(rows.alive) or not bool(still.any()):
            local = still.nonzero().squeeze(1)
            rows.keep(local.to(rows.alive.device))
            chosen = chosen[local]
            finished_since_compaction = 0
        else:
            # Finished rows kept for now are fed a pad token; what they produce is discarded.
            chosen = torch.where(still, chosen, torch.full_like(chosen, spec.pad_id))
            rows.alive = torch.where(still.to(rows.alive.device), rows.alive, torch.full_like(rows.alive, -1))
        if len(chosen):
            started = _clock(model)
            logits = rows.step(model, chosen)
            figures.decode_seconds += _clock(model) - started
            figures.decode_steps += 1
            figures.decode_rows += len(chosen)
        else:
            logits = logits[:0]
        started = _clock(model)
        logits = rows.admit(model, logits)
        figures.prefill_seconds += _clock(model) - started


def _clock(model: Any) -> float:
    """Seconds now, after the device's queued work (GPU kernels run asynchronously)."""
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    return time.perf_counter()
