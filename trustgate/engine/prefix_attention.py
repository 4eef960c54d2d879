"""Shared-prefix ("cascade") attention for batched decoding, plugged into transformers' own layers.

Why: the prompts of one DecodingTrust scenario share a system prompt and task description that
make up most of each prompt. Repeating that prefix's keys and values for every row (what a
batched `generate` or a copied cache does) makes every decode step read B copies of it, and
transformers' grouped-query path copies them once more per query head; on a CPU that memory
traffic, not the matrix multiplies, is what a decode step costs. Here the prefix's keys and
values are stored once, `[kv_heads, prefix, head_dim]`, and every row's queries meet them in one
batched matrix multiply; each row's own tokens live in a preallocated buffer written in place,
so no step copies the cache. The two score blocks share one softmax, so the result is exactly
the attention over [prefix, own tokens].

Everything but attention (embeddings, norms, rotary positions, projections, MLPs) stays the
model's own code: the function is registered with transformers' AttentionInterface and the
cache object is the `past_key_values` the attention layers already write to. Only
architectures whose layers all attend to the full sequence qualify (see `supports`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

IMPLEMENTATION = "trustgate_prefix"
# Decoder families whose attention layers call `past_key_values.update` and then the registered
# attention function, with queries/keys already normed and rotated. Each is checked against
# transformers' own attention in tests/test_prefix_attention.py.
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})
_PREFIX_IDS = itertools.count()  # every filled prefix's id, unique in the process


def supports(model: Any, longest_sequence: int) -> bool:
    """Whether `model` can decode through the shared-prefix path for sequences up to that length."""
    config = model.config
    if getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        return False
    window = getattr(config, "sliding_window", None)
    if window is not None and longest_sequence > window:
        return False  # a sliding window would hide early tokens; this path attends to all of them
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return all(kind == "full_attention" for kind in layer_types)


class Piece(NamedTuple):
    """Consecutive prompt tokens of one row in a packed forward: `count` tokens read from the
    packed input at `offset`, written to the row's own columns from `start` on."""

    row: int
    start: int
    count: int
    offset: int


class PrefixCache:
    """Keys and values of one batch: each shared prefix once, each row's own tokens in place.

    Row r's own tokens fill its columns [0, lengths[r]) with no padding between them (prompt
    segments, then generated tokens), so rows of different lengths sit side by side and each
    decode step writes every row at its own next column. Three kinds of forward write here:
    the prefix (`filling_prefix`, batch size 1), packed prompt segments (`pack`, batch size 1,
    any mix of rows of this cache's prefix: only real tokens are computed) and a decode step (one
    token per row). Rows of other streams, each with its own prefix, join by `append`: every row
    carries the id of its prefix, and a decode step attends each run of consecutive rows of one
    prefix to that prefix (rows of several streams decode in one batch, as vLLM's do).
    """

    def __init__(self, layers: int) -> None:
        self.layers = layers
        self.prefix_keys: list[torch.Tensor | None] = [None] * layers
        self.prefix_values: list[torch.Tensor | None] = [None] * layers
        self.own_keys: list[torch.Tensor | None] = [None] * layers
        self.own_values: list[torch.Tensor | None] = [None] * layers
        self.lengths = torch.zeros(0, dtype=torch.long)
        self.capacity = 0
        self.filling_prefix = False
        self.pieces: list[Piece] | None = None
        # Set by `pack` for one packed forward: see there.
        self._pack_rows = self._pack_slots = self._write_rows = self._write_columns = self.lengths
        self._pack_mask = torch.zeros((0, 1, 0, 0), dtype=torch.bool)
        self._pack_width = 0
        self._decode_end = 0
        self._step_slots: torch.Tensor | None = None
        # Which prefix each row reads: an id per row, and the prefixes' keys/values per id.
        # Id `prefix_id` is this cache's own prefix (prefix_keys/values; None: no prefix).
        self.prefix_id = next(_PREFIX_IDS)
        self.row_prefixes = torch.zeros(0, dtype=torch.long)
        self.prefixes: dict[int, tuple[list[torch.Tensor | None], list[torch.Tensor | None]]] = {}
        self.step_runs: list[tuple[int, int, int]] = []  # (first row, end row, prefix id) of a step

    @property
    def prefix_length(self) -> int:
        keys = self.prefix_keys[0]
        return 0 if keys is None else keys.shape[1]

    def sharing_prefix(self) -> PrefixCache:
        """An empty cache for further rows that reads this cache's prefix (stored once)."""
        other = PrefixCache(self.layers)
        other.prefix_keys, other.prefix_values = self.prefix_keys, self.prefix_values
        other.prefix_id = self.prefix_id
        return other

    def _prefix_of(self, prefix_id: int) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        if prefix_id == self.prefix_id:
            return self.prefix_keys, self.prefix_values
        return self.prefixes[prefix_id]

    def start_rows(self, rows: int, capacity: int, device: torch.device) -> None:
        """Own buffers for `rows` rows of at most `capacity` positions each (allocated on first write)."""
        self.filling_prefix = False
        self.capacity = capacity
        self.lengths = torch.zeros(rows, dtype=torch.long, device=device)
        self.own_keys = [None] * self.layers
        self.own_values = [None] * self.layers
        self.row_prefixes = torch.full((rows,), self.prefix_id, dtype=torch.long)

    def pack(self, pieces: list[Piece]) -> None:
        """The next forward is one packed sequence made of `pieces` (at most one per row, in
        offset order). Attention runs on the pieces' queries padded to the longest piece, one
        row each: padding costs attention only, never the projections and MLPs."""
        device = self.lengths.device
        self.pieces = pieces
        starts = torch.tensor([p.start for p in pieces], device=device)
        widest = max(p.count for p in pieces)
        self._pack_rows = torch.tensor([p.row for p in pieces], device=device)
        self._pack_slots = torch.cat([slot * widest + torch.arange(p.count) for slot, p in enumerate(pieces)]).to(
            device
        )
        self._pack_width = max(p.start + p.count for p in pieces)
        self._write_rows = self._pack_rows.repeat_interleave(torch.tensor([p.count for p in pieces], device=device))
        self._write_columns = torch.cat([torch.arange(p.start, p.start + p.count) for p in pieces]).to(device)
        # Query i of a piece sits at own column start + i and sees the prefix and own columns up
        # to itself (a padding query sees the same and is discarded).
        columns = starts[:, None] + torch.arange(widest, device=device)[None, :]
        own = torch.arange(self._pack_width, device=device)[None, None, :] <= columns[:, :, None]
        prefix = torch.ones((len(pieces), widest, self.prefix_length), dtype=torch.bool, device=device)
        self._pack_mask = torch.cat([prefix, own], dim=2).unsqueeze(1)

    def unpack(self) -> None:
        """The packed forward has finished: each row now holds its pieces' tokens."""
        for piece in self.pieces or ():
            self.lengths[piece.row] = piece.start + piece.count
        self.pieces = None

    def begin_step(self) -> None:
        """The next forward is a decode step: one token per row, written at its own length."""
        self._decode_end = int(self.lengths.max()) + 1
        self._step_slots = None  # where each (row, key/value head) writes; made by the first layer
        ids = self.row_prefixes.tolist()
        starts = [row for row in range(len(ids)) if row == 0 or ids[row] != ids[row - 1]]
        self.step_runs = [(start, end, ids[start]) for start, end in zip(starts, [*starts[1:], len(ids)], strict=True)]

    def advance(self) -> None:
        """The decode step has finished. A finished row not yet dropped is fed padding and may
        outstay its own tokens: it keeps rewriting its last column instead of running past the
        buffer (a live row never reaches that column: capacity covers its prompt and new tokens)."""
        self.lengths = torch.clamp(self.lengths + 1, max=self.capacity - 1)

    def select_rows(self, index: torch.Tensor) -> None:
        """Rows become `index` of the current rows: drops finished rows, or copies a segment
        computed once per distinct prompt part to every row that has it (repeats allowed)."""
        self.lengths = self.lengths[index]
        self.row_prefixes = self.row_prefixes[index.cpu()]
        for layer in range(self.layers):
            if self.own_keys[layer] is not None:
                self.own_keys[layer] = self.own_keys[layer][index]
                self.own_values[layer] = self.own_values[layer][index]
        # A prefix no row reads any more is freed.
        held = set(self.row_prefixes.tolist())
        self.prefixes = {key: prefix for key, prefix in self.prefixes.items() if key in held}

    def append(self, other: PrefixCache) -> None:
        """`other`'s rows join after this cache's rows; they keep reading `other`'s prefix."""
        for prefix_id in set(other.row_prefixes.tolist()):
            if prefix_id != self.prefix_id:
                self.prefixes[prefix_id] = other._prefix_of(prefix_id)
        self.row_prefixes = torch.cat([self.row_prefixes, other.row_prefixes])
        if not len(self.lengths):
            self.own_keys, self.own_values = other.own_keys, other.own_values
            self.lengths, self.capacity = other.lengths, other.capacity
            return
        capacity = max(self.capacity, other.capacity)
        for layer in range(self.layers):
            self.own_keys[layer] = _stack_rows(self.own_keys[layer], other.own_keys[layer], capacity)
            self.own_values[layer] = _stack_rows(self.own_values[layer], other.own_values[layer], capacity)
        self.lengths = torch.cat([self.lengths, other.lengths])
        self.capacity = capacity

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any):
        if self.filling_prefix:
            self.prefix_keys[layer_idx] = keys[0]
            self.prefix_values[layer_idx] = values[0]
            return keys, values
        if self.own_keys[layer_idx] is None:
            # Zeros, not empty memory: columns past a row's length are masked, and a masked
            # weight of 0 times a NaN left in uninitialised memory would still be NaN.
            shape = (len(self.lengths), keys.shape[1], self.capacity, keys.shape[3])
            self.own_keys[layer_idx] = keys.new_zeros(shape)
            self.own_values[layer_idx] = values.new_zeros(shape)
        own_keys, own_values = self.own_keys[layer_idx], self.own_values[layer_idx]
        if self.pieces is not None:
            own_keys[self._write_rows, :, self._write_columns] = keys[0].transpose(0, 1)
            own_values[self._write_rows, :, self._write_columns] = values[0].transpose(0, 1)
            return own_keys, own_values
        if self._step_slots is None:
            # Row r, head h, column lengths[r] of the [rows, heads, capacity, dim] buffer, as an
            # index into its rows of `dim`: one index_copy_ per layer instead of an index_put.
            rows, heads = own_keys.shape[:2]
            row_heads = torch.arange(rows * heads, device=keys.device).view(rows, heads)
            self._step_slots = (row_heads * own_keys.shape[2] + self.lengths[:, None]).flatten()
        dim = keys.shape[3]
        own_keys.view(-1, dim).index_copy_(0, self._step_slots, keys[:, :, 0].reshape(-1, dim))
        own_values.view(-1, dim).index_copy_(0, self._step_slots, values[:, :, 0].reshape(-1, dim))
        return own_keys[:, :, : self._decode_end], own_values[:, :, : self._decode_end]


def _stack_rows(first: torch.Tensor | None, second: torch.Tensor | None, capacity: int) -> torch.Tensor | None:
    if first is None or second is None:
        return second if first is None else first
    rows = first.shape[0] + second.shape[0]
    stacked = first.new_zeros((rows, first.shape[1], capacity, first.shape[3]))
    stacked[: first.shape[0], :, : first.shape[2]] = first
    stacked[first.shape[0] :, :, : second.shape[2]] = second
    return stacked


def _prefix_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    trustgate_cache: PrefixCache | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention output `[batch, queries, heads, head_dim]` over [shared prefix, own tokens]."""
    if trustgate_cache is None:
        raise RuntimeError(f"{IMPLEMENTATION} attention needs the PrefixCache passed as trustgate_cache")
    cache = trustgate_cache
    if cache.filling_prefix:
        output = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling, enable_gqa=True)
    elif cache.pieces is not None:
        output = _packed_queries(query, key, value, module.layer_idx, cache, scaling)
    else:
        # A decode step: each run of consecutive rows of one stream meets that stream's prefix.
        layer, runs = module.layer_idx, []
        for start, end, prefix_id in cache.step_runs:
            prefix_keys, prefix_values = cache._prefix_of(prefix_id)
            runs.append(
                _one_query(query[start:end], key[start:end], value[start:end], cache.lengths[start:end],
                           prefix_keys[layer], prefix_values[layer], scaling)
            )  # fmt: skip
        output = runs[0] if len(runs) == 1 else torch.cat(runs)
    return output.transpose(1, 2).contiguous(), None


def _packed_queries(query, key, value, layer: int, cache: PrefixCache, scaling) -> torch.Tensor:
    """Prompt tokens of many rows packed in one sequence: scattered to one padded row per piece
    for PyTorch's fused attention over the prefix and the row's own columns (causal), then
    gathered back to the packed order."""
    prefix_keys, prefix_values = cache.prefix_keys[layer], cache.prefix_values[layer]
    rows, slots, width = cache._pack_rows, cache._pack_slots, cache._pack_width
    _, heads, _, dim = query.shape
    pieces, widest = len(rows), cache._pack_mask.shape[2]
    padded = query.new_zeros((pieces * widest, heads, dim))
    padded[slots] = query[0].transpose(0, 1)
    padded = padded.view(pieces, widest, heads, dim).transpose(1, 2)
    keys, values = key[rows, :, :width], value[rows, :, :width]
    if prefix_keys is not None:
        keys = torch.cat([prefix_keys.expand(pieces, -1, -1, -1), keys], dim=2)
        values = torch.cat([prefix_values.expand(pieces, -1, -1, -1), values], dim=2)
    output = F.scaled_dot_product_attention(
        padded, keys, values, attn_mask=cache._pack_mask, scale=scaling, enable_gqa=True
    )
    return output.transpose(1, 2).reshape(pieces * widest, heads, dim)[slots].transpose(0, 1).unsqueeze(0)


def _one_query(query, key, value, lengths, prefix_keys, prefix_values, scaling) -> torch.Tensor:
    """A decode step: every row's query against the one prefix copy, plus its own tokens, under
    one softmax; no key or value is copied."""
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    scaling = dim**-0.5 if scaling is None else scaling
    # Query head h reads key/value head h // group: fold the group into the query axis.
    grouped = query.reshape(rows, kv_heads, group, dim)
    own_scores = torch.matmul(grouped, key.transpose(2, 3))
    # Each row sees its own columns up to the one just written (its length before advancing).
    allowed = torch.arange(key.shape[2], device=key.device)[None, :] <= lengths[:, None]
    own_scores = own_scores.masked_fill(~allowed[:, None, None, :], float("-inf"))
    if prefix_keys is None:
        weights = torch.softmax(own_scores.float() * scaling, dim=-1).to(value.dtype)
        return torch.matmul(weights, value).reshape(rows, heads, 1, dim)
    prefix_length = prefix_keys.shape[1]
    # All rows' queries against the one prefix copy: a [kv_heads] batch of plain matmuls.
    stacked = grouped.transpose(0, 1).reshape(kv_heads, rows * group, dim)
    prefix_scores = torch.bmm(stacked, prefix_keys.transpose(1, 2))
    prefix_scores = prefix_scores.reshape(kv_heads, rows, group, prefix_length).transpose(0, 1)
    scores = torch.cat([prefix_scores, own_scores], dim=-1).float() * scaling
    weights = torch.softmax(scores, dim=-1).to(value.dtype)
    prefix_weights = weights[..., :prefix_length].transpose(0, 1).reshape(kv_heads, rows * group, prefix_length)
    output = torch.bmm(prefix_weights, prefix_values).reshape(kv_heads, rows, group, dim).transpose(0, 1)
    output = output + torch.matmul(weights[..., prefix_length:], value)
    return output.reshape(rows, heads, 1, dim)


def _register() -> None:
    from transformers import AttentionInterface

    if IMPLEMENTATION not in AttentionInterface._global_mapping:
        AttentionInterface.register(IMPLEMENTATION, _prefix_attention)


@contextmanager
def prefix_attention(model: Any) -> Iterator[None]:
    """Route the model's attention layers through `_prefix_attention` for the duration."""
    _register()
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = IMPLEMENTATION
    try:
        yield
    finally:
        config._attn_implementation = previous
