"""One batch of generation: shared prompt prefix computed once, rows dropped as they finish.

Why not `model.generate`: DecodingTrust prompts of one scenario share a long system prompt and
task description (170 of ~180 tokens in the stereotype benign scenario). Here the shared prefix
is run once with batch size 1 and its KV cache copied to every row, so a batch of 64 prompts
pays the prefix once instead of 64 times. Rows that reached a stop token leave the batch, so
the last long answer does not drag finished rows through every step.

Layout of row r: [shared prefix][left padding][own suffix][generated ...]. Padding is masked
out and position ids skip it, so every row sees exactly the positions it would see alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from trustgate.errors import ModelOutputError


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


class _Rows:
    """The rows still generating: attention mask, next position and cache, shrunk together."""

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


def _check_finite(logits: torch.Tensor, model_name: str) -> None:
    if not torch.isfinite(logits).all():
        raise ModelOutputError(
            f"model {model_name}",
            "produced NaN or infinite logits",
            "the checkpoint is broken: rebuild it (delete its cache folder) or check its dtype",
        )


def _prefill(model: Any, token_ids: list[list[int]], spec: BatchSpec) -> tuple[torch.Tensor, _Rows]:
    from transformers import DynamicCache

    device = model.device
    rows = [ids for ids in token_ids for _ in range(spec.samples)]
    # At least one token per row stays outside the shared part: its logits start generation.
    shared = min(common_prefix_length(token_ids), min(len(ids) for ids in token_ids) - 1)
    if shared < spec.min_shared_prefix or len(rows) == 1:
        shared = 0
    cache = DynamicCache(config=model.config)
    if shared:
        prefix = torch.tensor([rows[0][:shared]], dtype=torch.long, device=device)
        model(input_ids=prefix, past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(len(rows))
    suffix_ids, suffix_mask = _left_padded([ids[shared:] for ids in rows], spec.pad_id)
    mask = torch.cat([torch.ones((len(rows), shared), dtype=torch.long), suffix_mask], dim=1).to(device)
    positions = (shared + suffix_mask.cumsum(dim=1) - 1).clamp(min=shared).to(device)
    output = model(
        input_ids=suffix_ids.to(device),
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return output.logits[:, -1, :].float(), _Rows(mask, positions, cache)


def _choose(logits: torch.Tensor, spec: BatchSpec, generator: torch.Generator) -> torch.Tensor:
    if spec.temperature <= 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(logits / spec.temperature, dim=-1)
    return torch.multinomial(probabilities.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


@torch.inference_mode()
def generate_batch(model: Any, token_ids: list[list[int]], spec: BatchSpec, model_name: str) -> list[list[int]]:
    """New token ids (stop token excluded) for every row: prompt i's samples at i*samples + s."""
    generator = torch.Generator().manual_seed(spec.seed)
    logits, rows = _prefill(model, token_ids, spec)
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
        logits = _step(model, rows, chosen)
    return generated


def _step(model: Any, rows: _Rows, chosen: torch.Tensor) -> torch.Tensor:
    rows.mask = torch.cat([rows.mask, torch.ones_like(rows.mask[:, :1])], dim=1)
    output = model(
        input_ids=chosen.unsqueeze(1),
        attention_mask=rows.mask,
        position_ids=rows.next_position,
        past_key_values=rows.cache,
        use_cache=True,
        logits_to_keep=1,
    )
    rows.next_position = rows.next_position + 1
    return output.logits[:, -1, :].float()
