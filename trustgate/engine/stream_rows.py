"""The rows of one stream, in the two layouts the decode loop (batch_decode) drives.

`SharedPrefixRows` (architectures that `prefix_attention` supports): each stream's shared
prefix computed and stored once; prompts read packed, real tokens only (each group's head once,
then every row's rest); rows waiting for a place, of this stream or the next, join the running
batch when an eighth of the places are free. `CopiedCacheRows` (any other model, the reference): transformers' own cache
with the prefix copied to every row, rows left-padded, all at once.

Both offer `first_logits`, `alive` (row per batch row, -1 once finished; stream k's rows follow
stream k-1's), `batch_streams` (stream per batch row), `waiting`, `keep` (drop rows), `step` (one
decode step) and `admit` (let waiting rows join).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from trustgate.engine.planning import common_prefix_length, distinct_heads
from trustgate.engine.prefix_attention import Piece, PrefixCache

if TYPE_CHECKING:
    from trustgate.engine.batch_decode import BatchFigures, BatchSpec


def _left_padded(suffixes: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in suffixes)
    ids = torch.full((len(suffixes), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(suffixes), width), dtype=torch.long)
    for row, suffix in enumerate(suffixes):
        ids[row, width - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
        mask[row, width - len(suffix) :] = 1
    return ids, mask


def split_rows(token_ids: list[list[int]], spec: BatchSpec) -> tuple[list[list[int]], int]:
    """Rows (prompts x samples) and the length of the prefix all of them share."""
    rows = [ids for ids in token_ids for _ in range(spec.samples)]
    # At least one token per row stays outside the shared part: its logits start generation.
    shared = min(common_prefix_length(token_ids), min(len(ids) for ids in token_ids) - 1)
    if shared < spec.min_shared_prefix or len(rows) == 1:
        shared = 0
    return rows, shared


class CopiedCacheRows:
    """transformers' own cache with the prefix copied to every row: any architecture, one
    stream's rows at once. Attention mask, next position and cache shrink together when rows are
    dropped."""

    waiting: tuple[int, ...] = ()

    def __init__(self, model: Any, streams: list[list[list[int]]], spec: BatchSpec, figures: BatchFigures) -> None:
        from transformers import DynamicCache

        (token_ids,) = streams
        device = model.device
        rows, shared = split_rows(token_ids, spec)
        self.cache = DynamicCache(config=model.config)
        if shared:
            prefix = torch.tensor([rows[0][:shared]], dtype=torch.long, device=device)
            model(input_ids=prefix, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
            self.cache.batch_repeat_interleave(len(rows))
        suffix_ids, suffix_mask = _left_padded([ids[shared:] for ids in rows], spec.pad_id)
        positions = torch.maximum(shared + suffix_mask.cumsum(dim=1) - 1, torch.tensor(shared))
        self.mask = torch.cat([torch.ones((len(rows), shared), dtype=torch.long), suffix_mask], dim=1).to(device)
        output = model(
            input_ids=suffix_ids.to(device),
            attention_mask=self.mask,
            position_ids=positions.to(device),
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        figures.prompt_positions += shared + int(suffix_mask.sum())
        figures.padding_positions += int((suffix_mask == 0).sum())
        self.first_logits = output.logits[:, -1, :].float()
        self.alive = torch.arange(len(rows))
        self.batch_streams = torch.zeros(len(rows), dtype=torch.long)
        self.next_position = positions[:, -1:].to(device) + 1

    def admit(self, model: Any, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def keep(self, local: torch.Tensor) -> None:
        self.alive = self.alive[local]
        self.batch_streams = self.batch_streams[local]
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


@dataclass
class _Stream:
    """One stream's rows in a `SharedPrefixRows` batch: global rows [first_row, first_row + n)."""

    first_row: int
    shared: int
    tails: list[list[int]]
    rows: list[list[int]]
    prefix: PrefixCache | None = None  # its prefix's keys and values, once its first row joins


class SharedPrefixRows:
    """Rows of one or more streams: each stream's prefix's keys and values held once (see
    prefix_attention); prompts read packed, real tokens only; waiting rows join (`admit`), in
    stream order, when an eighth of the places are free, so rows of the next stream fill the
    places the last rows of a stream leave (continuous batching across prefixes).

    `alive` holds global row numbers: stream k's rows follow stream k-1's."""

    def __init__(self, model: Any, streams: list[list[list[int]]], spec: BatchSpec, figures: BatchFigures) -> None:
        self.spec, self.figures = spec, figures
        self.streams: list[_Stream] = []
        self.stream_of_row: list[int] = []
        for index, token_ids in enumerate(streams):
            rows, shared = split_rows(token_ids, spec)
            tails = [ids[shared:] for ids in rows]
            self.streams.append(_Stream(len(self.stream_of_row), shared, tails, rows))
            self.stream_of_row += [index] * len(rows)
        self.cache = PrefixCache(model.config.num_hidden_layers)
        self.forward = {"past_key_values": self.cache, "use_cache": True, "trustgate_cache": self.cache}
        device = model.device
        self.cache.start_rows(0, 0, device)
        self.waiting = deque(range(len(self.stream_of_row)))
        self.max_rows = spec.max_rows or len(self.stream_of_row)
        self.alive = torch.zeros(0, dtype=torch.long)
        self.batch_streams = torch.zeros(0, dtype=torch.long)  # stream of each batch row
        self.next_position = torch.zeros((0, 1), dtype=torch.long, device=device)
        self.first_logits = self.admit(model, torch.zeros((0, model.config.get_text_config().vocab_size)))

    def keep(self, local: torch.Tensor) -> None:
        self.alive = self.alive[local.cpu()]
        self.batch_streams = self.batch_streams[local.cpu()]
        self.next_position = self.next_position[local]
        self.cache.select_rows(local.to(self.next_position.device))
        # A stream none of whose rows runs or waits is done: its prefix is freed.
        next_waiting = self.stream_of_row[self.waiting[0]] if self.waiting else len(self.streams)
        for index in set(range(next_waiting)) - set(self.batch_streams.tolist()):
            self.streams[index].prefix = None

    def step(self, model: Any, chosen: torch.Tensor) -> torch.Tensor:
        self.cache.begin_step()
        output = model(input_ids=chosen.unsqueeze(1), position_ids=self.next_position, logits_to_keep=1, **self.forward)
        self.cache.advance()
        self.next_position = self.next_position + 1
        return output.logits[:, -1, :].float()

    def admit(self, model: Any, logits: torch.Tensor) -> torch.Tensor:
        """Waiting rows that fit join the batch: their prompts are read (per stream, against
        its prefix) and their first logits follow `logits` (the running rows'). Each
        admission copies the cache, hence the eighth."""
        joining = self._rows_that_fit()
        if not joining:
            return logits
        firsts = [logits]
        for index in sorted({self.stream_of_row[row] for row in joining}):
            stream = self.streams[index]
            rows = [row for row in joining if self.stream_of_row[row] == index]
            joined = self._prefix(model, stream).sharing_prefix()
            tails = [stream.tails[row - stream.first_row] for row in rows]
            first = _read_prompts(model, joined, tails, stream.shared, self.spec, self.figures)
            self.cache.append(joined)
            self.alive = torch.cat([self.alive, torch.tensor(rows)])
            self.batch_streams = torch.cat([self.batch_streams, torch.full((len(rows),), index)])
            ends = torch.tensor([[stream.shared + len(tail)] for tail in tails], device=self.next_position.device)
            self.next_position = torch.cat([self.next_position, ends])
            firsts.append(first.to(logits.device))
        return torch.cat(firsts)

    def _prefix(self, model: Any, stream: _Stream) -> PrefixCache:
        """The stream's prefix cache, its shared prefix computed once (batch size 1)."""
        if stream.prefix is None:
            stream.prefix = PrefixCache(model.config.num_hidden_layers)
            if stream.shared:
                stream.prefix.filling_prefix = True
                prefix = torch.tensor([stream.rows[0][: stream.shared]], dtype=torch.long, device=model.device)
                positions = torch.arange(stream.shared, device=model.device).unsqueeze(0)
                forward = {"past_key_values": stream.prefix, "use_cache": True, "trustgate_cache": stream.prefix}
                model(input_ids=prefix, position_ids=positions, logits_to_keep=1, **forward)
                stream.prefix.filling_prefix = False
                self.figures.prompt_positions += stream.shared
        return stream.prefix

    def _rows_that_fit(self) -> list[int]:
        running = len(self.alive)
        free = self.max_rows - running
        if not self.waiting or free <= 0 or (running and free * 8 < self.max_rows):
            return []
        joining: list[int] = []
        width = self.cache.capacity if running else 0
        prefixes = {int(index): self.streams[int(index)].shared for index in self.batch_streams.unique()}
        budget = self.spec.max_cached_positions
        while self.waiting and len(joining) < free:
            row = self.waiting[0]
            stream = self.streams[self.stream_of_row[row]]
            needed = max(width, len(stream.tails[row - stream.first_row]) + self.spec.max_new_tokens)
            held = {**prefixes, self.stream_of_row[row]: stream.shared}
            positions = sum(held.values()) + (running + len(joining) + 1) * needed
            if budget is not None and positions > budget and (running or joining):
                break
            joining.append(self.waiting.popleft())
            width, prefixes = needed, held
        return joining


def _read_prompts(
    model: Any, cache: PrefixCache, tails: list[list[int]], shared: int, spec: BatchSpec, figures: BatchFigures
) -> torch.Tensor:
    """Two packed stages into an empty `cache`: each group's head once (then copied to its
    rows), then every row's remaining tokens. Returns each row's logits after its prompt."""
    heads, group_of = distinct_heads(tails, spec.min_shared_prefix)
    cache.start_rows(len(heads), capacity=max(len(t) for t in tails) + spec.max_new_tokens, device=model.device)
    _run_packed(model, cache, [(group, 0, head) for group, head in enumerate(heads)], shared, spec, figures)
    cache.select_rows(torch.tensor(group_of, device=model.device))
    starts = [len(heads[group]) for group in group_of]
    rests = [(row, start, tail[start:]) for row, (tail, start) in enumerate(zip(tails, starts, strict=True))]
    return _run_packed(model, cache, rests, shared, spec, figures)


def _run_packed(
    model: Any,
    cache: PrefixCache,
    segments: list[tuple[int, int, list[int]]],
    shared: int,
    spec: BatchSpec,
    figures: BatchFigures,
) -> torch.Tensor:
    """Segments (row, first own column, tokens) packed into forwards of at most
    `spec.prefill_tokens` tokens, a segment continuing in the next forward where one is full
    (it attends to its earlier part through the cache, so the result equals one forward).
    Returns the logits after each segment's last token, in segment order."""
    device = model.device
    forward = {"past_key_values": cache, "use_cache": True, "trustgate_cache": cache}
    logits: list[torch.Tensor] = []
    pieces: list[Piece] = []
    ids: list[int] = []
    ending: list[int] = []  # positions in the packed input where a segment ends

    def run() -> None:
        cache.pack(pieces)
        positions = torch.cat([shared + torch.arange(p.start, p.start + p.count) for p in pieces])
        keep = torch.tensor(ending or [len(ids) - 1], device=device)
        output = model(
            input_ids=torch.tensor([ids], device=device), position_ids=positions.unsqueeze(0).to(device),
            logits_to_keep=keep, **forward,
        )  # fmt: skip
        cache.unpack()
        figures.prompt_positions += len(ids)
        if ending:
            logits.append(output.logits[0].float())
        pieces.clear(), ids.clear(), ending.clear()

    for row, start, tokens in segments:
        done = 0
        while done < len(tokens):
            count = min(spec.prefill_tokens - len(ids), len(tokens) - done)
            pieces.append(Piece(row, start + done, count, len(ids)))
            ids.extend(tokens[done : done + count])
            done += count
            if done == len(tokens):
                ending.append(len(ids) - 1)
            if len(ids) >= spec.prefill_tokens:
                run()
    if ids:
        run()
    return torch.cat(logits) if logits else torch.zeros(0)
