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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

IMPLEMENTATION = "trustgate_prefix"
# Decoder families whose attention layers call `past_key_values.update` and then the registered
# attention function, with queries/keys already normed and rotated. Each is checked against
# transformers' own attention in tests/test_prefix_attention.py.
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


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


class PrefixCache:
    """Keys and values of one batch: the shared prefix once, each row's own tokens in place.

    `own_valid[r, j]` says whether own position j of row r holds a real token (padding does
    not). Before each forward over rows, `begin(valid)` marks which of its input tokens are
    real; `length` (own positions written) advances after the forward (`advance`).
    """

    def __init__(self, layers: int) -> None:
        self.layers = layers
        self.prefix_keys: list[torch.Tensor | None] = [None] * layers
        self.prefix_values: list[torch.Tensor | None] = [None] * layers
        self.own_keys: list[torch.Tensor | None] = [None] * layers
        self.own_values: list[torch.Tensor | None] = [None] * layers
        self.own_valid: torch.Tensor | None = None
        self.capacity = 0
        self.length = 0
        self.filling_prefix = False

    def start_rows(self, rows: int, capacity: int, device: torch.device) -> None:
        self.filling_prefix = False
        self.capacity = capacity
        self.own_valid = torch.zeros((rows, capacity), dtype=torch.bool, device=device)
        self.length = 0

    def begin(self, valid: torch.Tensor) -> None:
        """The next forward writes `valid.shape[1]` own positions; `valid` marks the real tokens."""
        self.own_valid[:, self.length : self.length + valid.shape[1]] = valid

    def advance(self, tokens: int) -> None:
        """The forward that wrote `tokens` own positions has finished."""
        self.length += tokens

    def select_rows(self, index: torch.Tensor) -> None:
        """Rows become `index` of the current rows: drops finished rows, or copies a segment
        computed once per distinct prompt part to every row that has it (repeats allowed)."""
        self.own_valid = self.own_valid[index]
        for layer in range(self.layers):
            if self.own_keys[layer] is not None:
                self.own_keys[layer] = self.own_keys[layer][index]
                self.own_values[layer] = self.own_values[layer][index]

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any):
        if self.filling_prefix:
            self.prefix_keys[layer_idx] = keys[0]
            self.prefix_values[layer_idx] = values[0]
            return keys, values
        if self.own_keys[layer_idx] is None:
            rows, heads, _, dim = keys.shape
            shape = (rows, heads, self.capacity, dim)
            self.own_keys[layer_idx] = keys.new_empty(shape)
            self.own_values[layer_idx] = values.new_empty(shape)
        end = self.length + keys.shape[2]
        own_keys, own_values = self.own_keys[layer_idx], self.own_values[layer_idx]
        own_keys[:, :, self.length : end] = keys
        own_values[:, :, self.length : end] = values
        return own_keys[:, :, :end], own_values[:, :, :end]


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
        return output.transpose(1, 2).contiguous(), None
    prefix_keys = cache.prefix_keys[module.layer_idx]
    prefix_values = cache.prefix_values[module.layer_idx]
    if query.shape[2] > 1:
        output = _many_queries(query, key, value, prefix_keys, prefix_values, cache, scaling)
    else:
        output = _one_query(query, key, value, prefix_keys, prefix_values, cache, scaling)
    return output.transpose(1, 2).contiguous(), None


def _many_queries(query, key, value, prefix_keys, prefix_values, cache: PrefixCache, scaling) -> torch.Tensor:
    """A segment of prompt tokens per row (run once per batch): PyTorch's fused attention with
    the prefix expanded to every row for this one call."""
    rows, _, queries, _ = query.shape
    own_length = key.shape[2]
    query_positions = cache.length + torch.arange(queries, device=query.device)
    key_positions = torch.arange(own_length, device=query.device)
    causal = key_positions[None, :] <= query_positions[:, None]
    # A padding query may see itself, so its (discarded) softmax never runs over nothing.
    itself = key_positions[None, :] == query_positions[:, None]
    allowed = (cache.own_valid[:, None, None, :own_length] & causal) | itself
    if prefix_keys is not None:
        prefix_length = prefix_keys.shape[1]
        key = torch.cat([prefix_keys.expand(rows, -1, -1, -1), key], dim=2)
        value = torch.cat([prefix_values.expand(rows, -1, -1, -1), value], dim=2)
        seen = torch.ones((rows, 1, queries, prefix_length), dtype=torch.bool, device=query.device)
        allowed = torch.cat([seen, allowed], dim=3)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=allowed, scale=scaling, enable_gqa=True)


def _one_query(query, key, value, prefix_keys, prefix_values, cache: PrefixCache, scaling) -> torch.Tensor:
    """A decode step: every row's query against the one prefix copy, plus its own tokens, under
    one softmax; no key or value is copied."""
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    scaling = dim**-0.5 if scaling is None else scaling
    # Query head h reads key/value head h // group: fold the group into the query axis.
    grouped = query.reshape(rows, kv_heads, group, dim)
    own_scores = torch.matmul(grouped, key.transpose(2, 3))
    allowed = cache.own_valid[:, : key.shape[2]].clone()
    allowed[:, cache.length] = True  # a padding query sees itself, so its softmax never runs over nothing
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
