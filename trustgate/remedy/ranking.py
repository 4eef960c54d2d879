"""Which decoder blocks to spare: free signals first, then measured divergence from dense.

Free signals cost no forward pass: llm-compressor logs a reconstruction error for every module
that GPTQ or SparseGPT compressed ("Quantizing 1 module(s): [name]" / "Sparsifying name ...",
then "METRIC - error X"), summed here per block; where the log has none (AWQ, Wanda, magnitude
pruning) the relative weight error of each block against dense stands in.

The measured signal: on the items where dense and the variant disagree most, the KL divergence
of the variant's next-token distributions from dense's, along dense's own answer (teacher
forced: the last prompt position and the answer's tokens), once for the plain variant and once
with each block restored to its dense weights. A block whose restoration removes most of the
divergence ranks first. Restoring to dense stands in for the 8-bit block a quantized remedy
keeps (8-bit weights are within a rounding step of dense); the probes then measure the real thing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate.models import ModelHandle, block_index, decoder_blocks, load_model, select_device

_MODULES = re.compile(r"(?:Quantizing \d+ module\(s\): \[(?P<names>[^\]]*)\]|Sparsifying (?P<name>\S+) using)")
_ERROR = re.compile(r"METRIC - error (?P<error>[0-9.eE+-]+|nan|inf)")


@dataclass(frozen=True)
class RankedBlock:
    index: int
    free_signal: float  # compression error of the block (log or weight error), larger = more damaged
    divergence: float | None  # KL from dense with this block restored (None: not measured)
    gain: float | None  # plain KL - divergence: how much restoring the block helps


@dataclass(frozen=True)
class Ranking:
    blocks: tuple[RankedBlock, ...]  # best first
    free_signal: str  # where the free signal came from
    plain_divergence: float | None
    forward_passes: int
    items: int
    seconds: float
    block_parameters: dict[int, int] = field(default_factory=dict)  # weights of each block's matrices
    notes: tuple[str, ...] = field(default=())

    @property
    def order(self) -> list[int]:
        return [block.index for block in self.blocks]


def logged_errors(log: str, blocks: Sequence[str]) -> dict[int, float]:
    """Per-block sums of the reconstruction errors llm-compressor logged, in log order."""
    errors: dict[int, float] = {}
    queue: list[str] = []
    for line in log.splitlines():
        if found := _MODULES.search(line):
            names = found.group("names")
            queue.extend(n.strip().strip("'\"") for n in names.split(",")) if names else queue.append(found["name"])
        elif (found := _ERROR.search(line)) and queue:
            index = block_index(queue.pop(0), blocks)
            value = float(found["error"])
            if index is not None and math.isfinite(value):
                errors[index] = errors.get(index, 0.0) + value
    return errors


def weight_errors(dense: Any, variant: Any) -> dict[int, float]:
    """Per-block relative Frobenius error of the variant's weights against dense's."""
    import torch

    blocks = decoder_blocks(dense)
    dense_params = dict(dense.named_parameters())
    squared: dict[int, list[float]] = {}
    with torch.no_grad():
        for name, param in variant.named_parameters():
            index = block_index(name, blocks)
            if index is None or param.dim() < 2 or name not in dense_params:
                continue
            reference = dense_params[name].float()
            sums = squared.setdefault(index, [0.0, 0.0])
            sums[0] += float((param.float() - reference).pow(2).sum())
            sums[1] += float(reference.pow(2).sum())
    return {index: math.sqrt(diff / total) if total else 0.0 for index, (diff, total) in squared.items()}


@dataclass(frozen=True)
class Probe:
    """One measured item: the rendered prompt and dense's own answer to it."""

    prompt: str
    answer: str


def _encode(tokenizer: Any, probes: Sequence[Probe], max_prompt_tokens: int, max_answer_tokens: int) -> list[Any]:
    import torch

    encoded = []
    for probe in probes:
        prompt = tokenizer(probe.prompt, add_special_tokens=False)["input_ids"][-max_prompt_tokens:]
        answer = tokenizer(probe.answer, add_special_tokens=False)["input_ids"][:max_answer_tokens]
        # Positions whose next-token distribution is compared: the last prompt token (the first
        # answer token's distribution) and every answer token but the last.
        first = len(prompt) - 1
        encoded.append((torch.tensor([prompt + answer]), slice(first, first + max(1, len(answer)))))
    return encoded


def _log_probs(model: Any, encoded: list[Any]) -> list[Any]:
    import torch

    outputs = []
    with torch.no_grad():
        for ids, positions in encoded:
            logits = model(input_ids=ids.to(model.device)).logits[0, positions].float()
            outputs.append(torch.log_softmax(logits, dim=-1).cpu())
    return outputs


def _kl(reference: list[Any], measured: list[Any]) -> float:
    """Mean over items of the mean per-position KL(reference || measured)."""
    import torch

    values = []
    for ref, got in zip(reference, measured, strict=True):
        # 0 x log 0 is 0 (a token dense never gives); a token only dense gives makes the KL infinite.
        terms = torch.nan_to_num(ref.exp() * (ref - got), nan=0.0, posinf=math.inf)
        values.append(float(terms.sum(dim=-1).mean()))
    result = sum(values) / len(values)
    return result if math.isfinite(result) else float("inf")


@contextmanager
def restored_to_dense(block: Any, dense_state: dict[str, Any]) -> Iterator[None]:
    """The variant's block with dense's weights while the context lasts, then its own again.

    A quantized checkpoint loads dequantized but keeps compressed-tensors' scale and shape
    tensors beside each weight, which dense has not: only the parameters dense has are swapped.
    """
    import torch

    saved = {k: v.detach().clone() for k, v in block.state_dict().items()}
    missing = set(dense_state) - set(saved)
    if missing:
        raise ValueError(f"the variant's block lacks dense's parameters {sorted(missing)}")
    with torch.no_grad():
        block.load_state_dict({k: v.to(saved[k].device, saved[k].dtype) for k, v in dense_state.items()}, strict=False)
    try:
        yield
    finally:
        with torch.no_grad():
            block.load_state_dict(saved)


def rank_blocks(
    dense: ModelHandle,
    variant: ModelHandle,
    probes: Sequence[Probe],
    compression_log: Path | None,
    device: str = "auto",
    measure: int | None = None,
    max_prompt_tokens: int = 384,
    max_answer_tokens: int = 32,
    trust_remote_code: bool = False,
) -> Ranking:
    """Rank the variant's decoder blocks by how much restoring each to dense brings it back.

    `measure` bounds the blocks measured by forward passes (the highest free signals first;
    None: all); the rest keep their free-signal order after them. Cost: (1 + measured blocks)
    forward passes per probe item on the variant, plus one per item on dense.
    """
    started = time.perf_counter()
    device = select_device(device)
    dense_model, tokenizer = load_model(dense.path, device, trust_remote_code)
    blocks = decoder_blocks(dense_model)
    log = compression_log.read_text(errors="replace") if compression_log and compression_log.is_file() else ""
    variant_model, _ = load_model(variant.path, device, trust_remote_code)
    free = logged_errors(log, blocks)
    source = "llm-compressor's logged reconstruction error per block"
    if len(free) < len(blocks):
        free, source = weight_errors(dense_model, variant_model), "relative weight error per block against dense"
    encoded = _encode(tokenizer, probes, max_prompt_tokens, max_answer_tokens)
    reference = _log_probs(dense_model, encoded)
    dense_blocks = {
        index: {k: v.detach().cpu().clone() for k, v in dense_model.get_submodule(name).state_dict().items()}
        for index, name in enumerate(blocks)
    }
    parameters = {
        index: sum(p.numel() for p in dense_model.get_submodule(name).parameters() if p.dim() >= 2)
        for index, name in enumerate(blocks)
    }
    del dense_model
    by_free = sorted(range(len(blocks)), key=lambda index: (-free.get(index, 0.0), index))
    chosen = by_free if measure is None else by_free[:measure]
    passes = len(encoded)
    plain = _kl(reference, _log_probs(variant_model, encoded)) if encoded else None
    passes += len(encoded)
    measured: dict[int, float] = {}
    for index in chosen if encoded else ():
        with restored_to_dense(variant_model.get_submodule(blocks[index]), dense_blocks[index]):
            measured[index] = _kl(reference, _log_probs(variant_model, encoded))
        passes += len(encoded)
    ranked = [
        RankedBlock(
            index,
            free.get(index, 0.0),
            measured.get(index),
            None if index not in measured or plain is None else plain - measured[index],
        )
        for index in range(len(blocks))
    ]
    # Measured blocks by gain, then the unmeasured ones by free signal.
    ranked.sort(key=lambda b: (b.gain is None, -(b.gain or 0.0), -b.free_signal, b.index))
    notes = () if encoded else ("no items to measure: ranked by the free signal alone",)
    seconds = time.perf_counter() - started
    return Ranking(tuple(ranked), source, plain, passes, len(encoded), seconds, parameters, notes)
