"""One stream of generation: shared prompt parts computed once, prompts read without padding,
rows leaving as they finish and new prompts taking their places.

Why not `model.generate`: DecodingTrust prompts of one scenario share a long system prompt and
task description (170 of ~180 tokens in the stereotype benign scenario), and in the targeted
scenario prompts about one group share a second, longer head. Here the stream's shared prefix
runs once with batch size 1, each group's head runs once, and only what is left of each prompt
runs per row.

Two row layouts (trustgate/engine/stream_rows.py) share the decode loop. For the
architectures `prefix_attention` supports, the prefix's keys and values are held once, each
row's cache is a buffer written in place, prompt segments of many rows are packed into one
sequence so that only real tokens run through the projections and MLPs (no padding), and rows
of the stream wait for a free place (at most `max_rows` rows, `max_cached_positions` cached
positions, the prefix counted once) and join the running batch when others finish (continuous
batching). Any other model runs on transformers' own cache with the prefix copied to every row,
in fixed batches (layout [prefix][left padding][own suffix][generated ...], padding masked and
skipped by position ids). Both give the tokens `generate` gives one prompt at a time
(tests/test_prefix_attention.py, tests/test_continuous_batching.py).
"""

from __future__ import annotations

import time
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


def _choose(logits: torch.Tensor, spec: BatchSpec, generator: torch.Generator) -> torch.Tensor:
    if spec.temperature <= 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(logits / spec.temperature, dim=-1)
    return torch.multinomial(probabilities.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


@torch.inference_mode()
def generate_batch(
    model: Any, token_ids: list[list[int]], spec: BatchSpec, model_name: str, figures: BatchFigures | None = None
) -> list[list[int]]:
    """New token ids (stop token excluded) for every row: prompt i's samples at i*samples + s.
    `figures`, when given, receives the stream's timings and positions."""
    figures = figures if figures is not None else BatchFigures()
    longest = max(len(ids) for ids in token_ids) + spec.max_new_tokens
    if spec.shared_prefix_attention and prefix_attention.supports(model, longest):
        with prefix_attention.prefix_attention(model):
            return _decode(model, token_ids, spec, model_name, SharedPrefixRows, figures)
    # The copied-cache path holds its rows at once: consecutive fixed batches within the same
    # bounds, the prefix counted in every row (each row holds a copy).
    generated: list[list[int]] = []
    start = 0
    while start < len(token_ids):
        end = start + 1
        while end < len(token_ids) and _fits_copied(token_ids[start : end + 1], spec):
            end += 1
        generated += _decode(model, token_ids[start:end], spec, model_name, CopiedCacheRows, figures)
        start = end
    return generated


def _fits_copied(token_ids: list[list[int]], spec: BatchSpec) -> bool:
    rows = len(token_ids) * spec.samples
    positions = rows * (max(len(ids) for ids in token_ids) + spec.max_new_tokens)
    return rows <= (spec.max_rows or rows) and positions <= (spec.max_cached_positions or positions)


def _decode(
    model: Any, token_ids: list[list[int]], spec: BatchSpec, model_name: str, kind: Any, figures: BatchFigures
) -> list[list[int]]:
    generator = torch.Generator().manual_seed(spec.seed)
    started = _clock(model)
    rows = kind(model, token_ids, spec, figures)
    logits = rows.first_logits
    figures.prefill_seconds += _clock(model) - started
    generated: list[list[int]] = [[] for _ in range(len(token_ids) * spec.samples)]
    stop = torch.tensor(spec.stop_ids or [-1], device=logits.device)
    finished_since_compaction = 0
    while True:
        live = rows.alive >= 0  # finished rows not yet dropped carry -1
        _check_finite(logits[live], model_name)
        chosen = _choose(logits, spec, generator)
        stopped = torch.isin(chosen, stop) & live
        done = stopped.tolist()
        for index, (row, token, is_stop) in enumerate(zip(rows.alive.tolist(), chosen.tolist(), done, strict=True)):
            if row >= 0 and not is_stop:
                generated[row].append(token)
                done[index] = len(generated[row]) >= spec.max_new_tokens
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
    return generated


def _clock(model: Any) -> float:
    """Seconds now, after the device's queued work (GPU kernels run asynchronously)."""
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    return time.perf_counter()
