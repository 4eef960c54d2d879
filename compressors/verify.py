"""Evidence that compression happened: sparsity patterns and distinct values per group."""

from __future__ import annotations

import torch

from compressors.layers import compressible_linears, group_size_for
from compressors.variants import VariantSpec

SPARSITY_TOLERANCE = 0.01


def max_distinct_per_group(weight: torch.Tensor, group_size: int) -> int:
    """Largest count of distinct values in any group of `group_size` consecutive inputs."""
    groups = weight.detach().float().reshape(weight.shape[0], -1, group_size)
    ordered = groups.sort(dim=-1).values
    distinct = (ordered[..., 1:] != ordered[..., :-1]).sum(dim=-1) + 1
    return int(distinct.max())


def max_nonzeros_per_block(weight: torch.Tensor, block: int) -> int:
    blocks = weight.detach().reshape(weight.shape[0], -1, block)
    return int((blocks != 0).sum(dim=-1).max())


def compression_problems(model: torch.nn.Module, spec: VariantSpec) -> list[str]:
    """One line per layer that does not hold what `spec` asked for; empty when all do."""
    problems: list[str] = []
    layers = list(compressible_linears(model))
    if not layers:
        return ["no compressible Linear layers found"]
    for name, linear in layers:
        weight = linear.weight
        if spec.method in ("gptq", "awq"):
            size = group_size_for(linear.in_features)
            distinct = max_distinct_per_group(weight, size)
            if distinct > 2**spec.bits:
                problems.append(f"{name}: {distinct} distinct values in a group of {size} (> 2^{spec.bits})")
        elif spec.structure is not None:
            kept, block = spec.structure
            nonzeros = max_nonzeros_per_block(weight, block)
            if nonzeros > kept:
                problems.append(f"{name}: {nonzeros} non-zeros in a block of {block} (pattern {kept}:{block})")
        elif spec.sparsity is not None:
            sparsity = float((weight == 0).float().mean())
            if sparsity < spec.sparsity - SPARSITY_TOLERANCE:
                problems.append(f"{name}: sparsity {sparsity:.3f} < {spec.sparsity:.2f}")
    return problems
