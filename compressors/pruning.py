"""SparseGPT and Wanda recipes for llm-compressor, and our own magnitude pruning.

llm-compressor's MagnitudePruningModifier accepts only unstructured masks, so magnitude pruning
(N:M and unstructured alike, one implementation for both) lives here.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from typing import Any

import torch

from compressors.layers import EXCLUDED, compressible_linears, kept_blocks_regex
from compressors.variants import VariantSpec

MAGNITUDE = "trustgate_magnitude_pruning"  # the recipe key of our own method


def mask_structure(spec: VariantSpec) -> str:
    return f"{spec.structure[0]}:{spec.structure[1]}" if spec.structure else "0:0"


def pruning_recipe(spec: VariantSpec, model: torch.nn.Module) -> dict[str, Any]:
    """The recipe of a pruned variant: llm-compressor's schema for SparseGPT and Wanda; for
    magnitude pruning our own entry, which carries a digest of the code that applies it."""
    kept = kept_blocks_regex(spec, model)  # a remedy's blocks stay dense
    if spec.method == "magnitude":
        settings = {
            "sparsity": spec.sparsity,
            "structure": list(spec.structure) if spec.structure else None,
            "exclude": list(EXCLUDED),
            "code": magnitude_code_digest(),
        }
        return {MAGNITUDE: {**settings, "kept": kept} if kept else settings}
    targets = sorted({f"re:.*\\.{name.split('.')[-1]}$" for name, _ in compressible_linears(model)})
    modifier = "SparseGPTModifier" if spec.method == "sparsegpt" else "WandaPruningModifier"
    settings = {"sparsity": spec.sparsity, "mask_structure": mask_structure(spec), "targets": targets}
    if kept:
        settings["ignore"] = [f"re:{kept}"]
    return {"default_stage": {"default_modifiers": {modifier: settings}}}


def magnitude_mask(weight: torch.Tensor, sparsity: float, structure: tuple[int, int] | None) -> torch.Tensor:
    """Boolean keep-mask: the largest |w| in every M consecutive inputs (N:M), or per layer."""
    magnitude = weight.detach().abs()
    if structure is None:
        drop = round(sparsity * magnitude.numel())
        keep = torch.ones_like(magnitude, dtype=torch.bool).flatten()
        if drop:
            keep[torch.argsort(magnitude.flatten())[:drop]] = False
        return keep.view_as(magnitude)
    kept, block = structure
    if magnitude.shape[1] % block:
        raise ValueError(f"input width {magnitude.shape[1]} is not a multiple of {block}")
    blocks = magnitude.reshape(magnitude.shape[0], -1, block)
    top = blocks.topk(kept, dim=-1).indices
    keep = torch.zeros_like(blocks, dtype=torch.bool).scatter_(-1, top, True)
    return keep.view_as(magnitude)


@torch.no_grad()
def magnitude_prune(model: torch.nn.Module, settings: dict[str, Any]) -> None:
    """Apply a magnitude-pruning recipe entry (see `pruning_recipe`) in place."""
    structure = tuple(settings["structure"]) if settings["structure"] else None
    kept = settings.get("kept")
    for name, linear in compressible_linears(model):
        if kept and re.match(kept, name):
            continue
        linear.weight.mul_(magnitude_mask(linear.weight, settings["sparsity"] or 0.0, structure))


def magnitude_code_digest() -> str:
    """sha256 of the source that decides magnitude-pruned weights: an edit to it keys new checkpoints."""
    parts = (magnitude_mask, magnitude_prune, compressible_linears)
    return hashlib.sha256("\n".join(inspect.getsource(part) for part in parts).encode()).hexdigest()
