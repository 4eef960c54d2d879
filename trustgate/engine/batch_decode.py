"""One batch of generation: shared prompt parts computed once, rows dropped as they finish.

Why not `model.generate`: DecodingTrust prompts of one scenario share a long system prompt and
task description (170 of ~180 tokens in the stereotype benign scenario), and in the targeted
scenario prompts about one group share a second, longer head. Here the batch-wide prefix runs
once with batch size 1, each group's head runs once, and only what is left of each prompt runs
per row. Rows that reached a stop token leave the batch, so the last long answer does not drag
finished rows through every step.

Two paths share the decode loop. For the architectures `prefix_attention` supports, the prefix's
keys and values are held once and each row's cache is a preallocated buffer written in place
(no copy per step, no per-head duplication); any other model runs on transformers' own cache
with the prefix copied to every row (layout [prefix][left padding][own suffix][generated ...],
padding masked and skipped by position ids, so every row sees the positions it would see alone).
Both give the tokens `generate` gives one prompt at a time (tests/test_prefix_attention.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from trustgate.engine import prefix_attention
from trustgate.engine.prefix_attention import PrefixCache
from trustgate.util.errors import ModelOutputError


@dataclass(frozen=True)
class BatchSpec:
    """Decoding of one batch: rows are prompts repeated `samples` times, consecutively."""

    max_new_tokens: int
    samples: int
    temperature: float  # <= 0: greedy
    seed: int
    stop_ids: tuple[int, ...]
    pad_id: int
    min_shared_prefix: int = 16
    # False: transformers' own cache with the prefix copied per row (the reference path).
    shared_prefix_attention: bool = True
    # Positions per forward while reading prompts (rows x columns); bounds activation memory.
    prefill_tokens: int = 2048


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    if not sequences:
        return 0
    shortest = min(len(s) for s in sequences)
    first = sequences[0]
    for position in range(shortest):
        token = first[position]
        if any(s[position] != token for s in sequences):
            return position
    return shortest


def _left_padded(suffixes: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in suffixes)
    ids = torch.full((len(suffixes), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(suffixes), width), dtype=torch.long)
    for row, suffix in enumerate(suffixes):
        ids[row, width - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
        mask[row, width - len(suffix) :] = 1
    return ids, mask


class _CopiedCacheRows:
    """transformers' own cache with the prefix copied to every row: any architecture.

    Attention mask, next position and cache shrink together when rows are dropped.
    """

    def __init__(self, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> None:
        self.alive = torch.arange(mask.shape[0])
        self.mask = mask
        self.next_position = positions[:, -1:] + 1
        self.cache = cache

    def keep(self, local: torch.Tensor) -> None:
        self.alive = self.alive[local]
        self.mask = self.mask[local]
        self.next_position = self.next_position[local]
        self.cache.batch_select_indices(local)

    def step(self, model: Any, chosen: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        output = model(
            input_ids=chosen.unsqueeze(1),
            attention_mask=self.mask,
            position_ids=self.next_position,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.next_position = self.next_position + 1
        return output.logits[:, -1, :].float()


class _SharedPrefixRows:
    """The prefix's keys and values held once (see prefix_attention); rows written in place."""

    def __init__(self, positions: torch.Tensor, cache: PrefixCache) -> None:
        self.alive = torch.arange(positions.shape[0])
        self.next_position = positions[:, -1:] + 1
        self.cache = cache

    def keep(self, local: torch.Tensor) -> None:
        self.alive = self.alive[local]
        self.next_position = self.next_position[local]
        self.cache.select_rows(local.to(self.next_position.device))

    def step(self, model: Any, chosen: torch.Tensor) -> torch.Tensor:
        self.cache.begin(torch.ones_like(chosen, dtype=torch.bool).unsqueeze(1))
        output = model(
            input_ids=chosen.unsqueeze(1),
            position_ids=self.next_position,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
            trustgate_cache=self.cache,
        )
        self.cache.advance(1)
        self.next_position = self.next_position + 1
        return output.logits[:, -1, :].float()


def _check_finite(logits: torch.Tensor, model_name: str) -> None:
    if not torch.isfinite(logits).all():
        raise ModelOutputError(
            f"model {model_name}",
            "produced NaN or infinite logits",
            "the checkpoint is broken: rebuild it (delete its cache folder) or check its dtype",
        )


def _split(token_ids: list[list[int]], spec: BatchSpec) -> tuple[list[list[int]], int]:
    """Rows (prompts x samples) and the length of the prefix all of them share."""
    rows = [ids for ids in token_ids for _ in range(spec.samples)]
    # At least one token per row stays outside the shared part: its logits start generation.
    shared = min(common_prefix_length(token_ids), min(len(ids) for ids in token_ids) - 1)
    if shared < spec.min_shared_prefix or len(rows) == 1:
        shared = 0
    return rows, shared


def _segment_inputs(
    segments: list[list[int]], start: int | torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded token segments, their mask, and positions from `start` (one int, or one per
    row as a column) that skip the padding."""
    ids, mask = _left_padded(segments, pad_id)
    start = torch.as_tensor(start)
    positions = torch.maximum(start + mask.cumsum(dim=1) - 1, start)
    return ids, mask, positions


def _prefill_copied(model: Any, token_ids: list[list[int]], spec: BatchSpec) -> tuple[torch.Tensor, _CopiedCacheRows]:
    from transformers import DynamicCache

    device = model.device
    rows, shared = _split(token_ids, spec)
    cache = DynamicCache(config=model.config)
    if shared:
        prefix = torch.tensor([rows[0][:shared]], dtype=torch.long, device=device)
        model(input_ids=prefix, past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(len(rows))
    suffix_ids, suffix_mask, positions = _segment_inputs([ids[shared:] for ids in rows], shared, spec.pad_id)
    mask = torch.cat([torch.ones((len(rows), shared), dtype=torch.long), suffix_mask], dim=1).to(device)
    positions = positions.to(device)
    output = model(
        input_ids=suffix_ids.to(device),
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return output.logits[:, -1, :].float(), _CopiedCacheRows(mask, positions, cache)


def distinct_heads(tails: list[list[int]], min_length: int) -> tuple[list[list[int]], list[int]]:
    """Rows' token lists grouped by a common head that is computed once per group.

    Returns the heads and each row's group. A group's head is what all its rows share, at
    least `min_length` tokens (a lone row's head is all but its last token); every row keeps at
    least one token after its head. A row joins the group before it (in token order) unless
    that would halve the group's head, so one short common start does not merge groups.
    """
    order = sorted(range(len(tails)), key=lambda row: tails[row])
    members: list[list[int]] = []
    head_lengths: list[int] = []
    for row in order:
        tail = tails[row]
        if members:
            common = min(common_prefix_length([tails[members[-1][0]], tail]), len(tail) - 1)
            current = head_lengths[-1]
            joined = min(current, common)
            if joined >= min_length and (len(members[-1]) == 1 or 2 * joined >= current):
                members[-1].append(row)
                head_lengths[-1] = joined
                continue
        members.append([row])
        head_lengths.append(max(len(tail) - 1, 0))
    group_of = [0] * len(tails)
    for group, rows in enumerate(members):
        for row in rows:
            group_of[row] = group
    heads = [tails[rows[0]][:length] for rows, length in zip(members, head_lengths, strict=True)]
    return heads, group_of


def _prefill_shared(model: Any, token_ids: list[list[int]], spec: BatchSpec) -> tuple[torch.Tensor, _SharedPrefixRows]:
    """Three stages: the batch's shared prefix once; each group's head once (copied to its
    rows); then every row's remaining tokens. See prefix_attention for the decode side."""
    device = model.device
    rows, shared = _split(token_ids, spec)
    cache = PrefixCache(model.config.num_hidden_layers)
    forward = {"past_key_values": cache, "use_cache": True, "logits_to_keep": 1, "trustgate_cache": cache}
    if shared:
        cache.filling_prefix = True
        prefix = torch.tensor([rows[0][:shared]], dtype=torch.long, device=device)
        model(input_ids=prefix, position_ids=torch.arange(shared, device=device).unsqueeze(0), **forward)

    tails = [ids[shared:] for ids in rows]
    heads, group_of = distinct_heads(tails, spec.min_shared_prefix)
    head_width = max(len(head) for head in heads)
    rests = [tail[len(heads[group]) :] for tail, group in zip(tails, group_of, strict=True)]
    rest_start = torch.tensor([[shared + len(heads[group])] for group in group_of])
    rest_ids, rest_mask, positions = _segment_inputs(rests, rest_start, spec.pad_id)
    cache.start_rows(len(heads), capacity=head_width + rest_ids.shape[1] + spec.max_new_tokens, device=device)
    if head_width:
        head_ids, head_mask, head_positions = _segment_inputs(heads, shared, spec.pad_id)
        _run_in_chunks(model, cache, head_ids, head_mask, head_positions, spec.prefill_tokens, forward)
    cache.select_rows(torch.tensor(group_of, device=device))
    logits = _run_in_chunks(model, cache, rest_ids, rest_mask, positions, spec.prefill_tokens, forward)
    return logits, _SharedPrefixRows(positions.to(device), cache)


def _run_in_chunks(
    model: Any,
    cache: PrefixCache,
    ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    max_tokens: int,
    forward: dict[str, Any],
) -> torch.Tensor:
    """One prompt segment for every row, in column chunks of at most `max_tokens` positions in
    all: activations and attention masks of a forward grow with the tokens it runs, and a
    32-shot prompt in a batch would otherwise need gigabytes for one step. Each chunk attends
    to everything before it through the cache, so the result equals one forward."""
    device = model.device
    width = ids.shape[1]
    step = max(1, max_tokens // ids.shape[0])
    logits = None
    for start in range(0, width, step):
        end = min(width, start + step)
        cache.begin(mask[:, start:end].bool().to(device))
        output = model(
            input_ids=ids[:, start:end].to(device), position_ids=positions[:, start:end].to(device), **forward
        )
        cache.advance(end - start)
        logits = output.logits[:, -1, :]
    return logits.float()


def _choose(logits: torch.Tensor, spec: BatchSpec, generator: torch.Generator) -> torch.Tensor:
    if spec.temperature <= 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(logits / spec.temperature, dim=-1)
    return torch.multinomial(probabilities.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


@torch.inference_mode()
def generate_batch(model: Any, token_ids: list[list[int]], spec: BatchSpec, model_name: str) -> list[list[int]]:
    """New token ids (stop token excluded) for every row: prompt i's samples at i*samples + s."""
    longest = max(len(ids) for ids in token_ids) + spec.max_new_tokens
    if spec.shared_prefix_attention and prefix_attention.supports(model, longest):
        with prefix_attention.prefix_attention(model):
            return _decode(model, token_ids, spec, model_name, _prefill_shared)
    return _decode(model, token_ids, spec, model_name, _prefill_copied)


def _decode(model: Any, token_ids: list[list[int]], spec: BatchSpec, model_name: str, prefill: Any) -> list[list[int]]:
    generator = torch.Generator().manual_seed(spec.seed)
    logits, rows = prefill(model, token_ids, spec)
    total = logits.shape[0]
    generated: list[list[int]] = [[] for _ in range(total)]
    stop = torch.tensor(spec.stop_ids or [-1], device=logits.device)
    finished_since_compaction = 0
    for step in range(spec.max_new_tokens):
        live = rows.alive >= 0  # finished rows not yet dropped carry -1
        _check_finite(logits[live], model_name)
        chosen = _choose(logits, spec, generator)
        stopped = torch.isin(chosen, stop) & live
        for row, token, is_stop in zip(rows.alive.tolist(), chosen.tolist(), stopped.tolist(), strict=True):
            if row >= 0 and not is_stop:
                generated[row].append(token)
        still = live & ~stopped
        finished_since_compaction += int(stopped.sum())
        if step == spec.max_new_tokens - 1 or not bool(still.any()):
            break
        # Dropping rows copies the cache; do it once an eighth of the batch has finished.
        if finished_since_compaction * 8 >= len(rows.alive):
            local = still.nonzero().squeeze(1)
            rows.keep(local)
            chosen = chosen[local]
            finished_since_compaction = 0
        else:
            # Finished rows kept for now are fed a pad token; what they produce is discarded.
            chosen = torch.where(still, chosen, torch.full_like(chosen, spec.pad_id))
            rows.alive = torch.where(still, rows.alive, torch.full_like(rows.alive, -1))
        logits = rows.step(model, chosen)
    return generated
