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


def max_grid_span(weight: torch.Tensor, group_size: int, tolerance: float = 0.02) -> float:
    """How many grid steps the widest group spans, or inf when a group is not on a uniform grid.

    Dequantized weights are scale x integer (+ offset) per group, so within a group every gap
    between sorted values is a whole multiple of the smallest gap. A group of dense floats is
    not; this catches an 8-bit variant even when the group has fewer than 256 weights.
    """
    groups = weight.detach().double().reshape(weight.shape[0], -1, group_size)
    ordered = groups.sort(dim=-1).values
    gaps = ordered[..., 1:] - ordered[..., :-1]
    positive = torch.where(gaps > 0, gaps, torch.full_like(gaps, float("inf")))
    step = positive.min(dim=-1, keepdim=True).values
    finite_step = torch.where(torch.isinf(step), torch.ones_like(step), step)
    multiples = gaps / finite_step
    off_grid = ((multiples - multiples.round()).abs() > tolerance) & (gaps > 0)
    if bool(off_grid.any()):
        return float("inf")
    spans = ((ordered[..., -1:] - ordered[..., :1]) / finite_step).squeeze(-1)
    return float(spans.max())


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
            span = max_grid_span(weight, size)
            if distinct > 2**spec.bits:
                problems.append(f"{name}: {distinct} distinct values in a group of {size} (> 2^{spec.bits})")
            elif span > 2**spec.bits - 1 + 0.5:
                problems.append(f"{name}: a group of {size} is not on a grid of 2^{spec.bits} levels")
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
