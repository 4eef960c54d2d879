"""SparseGPT and Wanda recipes for llm-compressor, and our own magnitude pruning.

llm-compressor's MagnitudePruningModifier accepts only unstructured masks, so magnitude pruning
(N:M and unstructured alike, one implementation for both) lives here.
"""

from __future__ import annotations

from typing import Any

import torch

from compressors.layers import compressible_linears
from compressors.variants import VariantSpec


def mask_structure(spec: VariantSpec) -> str:
    return f"{spec.structure[0]}:{spec.structure[1]}" if spec.structure else "0:0"


def pruning_recipe(spec: VariantSpec, model: torch.nn.Module) -> Any:
    targets = sorted({f"re:.*\\.{name.split('.')[-1]}$" for name, _ in compressible_linears(model)})
    if spec.method == "sparsegpt":
        from llmcompressor.modifiers.obcq import SparseGPTModifier

        return SparseGPTModifier(sparsity=spec.sparsity, mask_structure=mask_structure(spec), targets=targets)
    from llmcompressor.modifiers.pruning import WandaPruningModifier

    return WandaPruningModifier(sparsity=spec.sparsity, mask_structure=mask_structure(spec), targets=targets)


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
def magnitude_prune(model: torch.nn.Module, spec: VariantSpec) -> None:
    for _, linear in compressible_linears(model):
        linear.weight.mul_(magnitude_mask(linear.weight, spec.sparsity or 0.0, spec.structure))
