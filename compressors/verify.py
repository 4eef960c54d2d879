"""Evidence that compression happened: sparsity patterns and distinct values per group."""

from __future__ import annotations

import re

import torch

from compressors.layers import compressible_linears, group_size_for, kept_blocks_regex
from compressors.quantization import KEPT_BITS
from compressors.variants import VariantSpec

SPARSITY_TOLERANCE = 0.01


def max_distinct_per_group(weight: torch.Tensor, group_size: int) -> int:
    """Largest count of distinct values in any group of `group_size` consecutive inputs."""
    groups = weight.detach().float().reshape(weight.shape[0], -1, group_size)
    ordered = groups.sort(dim=-1).values
    distinct = (ordered[..., 1:] != ordered[..., :-1]).sum(dim=-1) + 1
    return int(distinct.max())


def max_grid_span(weight: torch.Tensor, group_size: int, tolerance: float = 0.02, max_divisor: int = 16) -> float:
    """How many grid steps the widest group spans, or inf when a group is not on a uniform grid.

    Dequantized weights are scale x integer (+ offset) per group, so within a group every gap
    between sorted values is a whole multiple of the grid step. The step is the smallest gap
    divided by some whole number: 1 when two values sit on neighbouring levels, which a group of
    many weights at few bits almost always has, but 2 or 3 for a small group at 8 bits (32
    weights on 256 levels rarely touch). The smallest divisor that puts every gap on the grid
    wins. A group of dense floats fits no divisor, which catches an unquantized layer.
    """
    groups = weight.detach().double().reshape(-1, group_size)
    ordered = groups.sort(dim=-1).values
    gaps = ordered[:, 1:] - ordered[:, :-1]
    positive = torch.where(gaps > 0, gaps, torch.full_like(gaps, float("inf")))
    smallest = positive.min(dim=-1).values
    smallest = torch.where(torch.isinf(smallest), torch.ones_like(smallest), smallest)  # one value: span 0
    width = ordered[:, -1] - ordered[:, 0]
    span = torch.full_like(width, float("inf"))
    pending = torch.arange(len(groups))
    for divisor in range(1, max_divisor + 1):
        step = (smallest[pending] / divisor).unsqueeze(-1)
        multiples = gaps[pending] / step
        off_grid = ((multiples - multiples.round()).abs() > tolerance) & (gaps[pending] > 0)
        on_grid = ~off_grid.any(dim=-1)
        span[pending[on_grid]] = width[pending[on_grid]] / step[on_grid].squeeze(-1)
        pending = pending[~on_grid]
        if not len(pending):
            break
    return float(span.max())


def max_nonzeros_per_block(weight: torch.Tensor, block: int) -> int:
    blocks = weight.detach().reshape(weight.shape[0], -1, block)
    return int((blocks != 0).sum(dim=-1).max())


def compression_problems(model: torch.nn.Module, spec: VariantSpec) -> list[str]:
    """One line per layer that does not hold what `spec` asked for; empty when all do. The layers
    of a remedy's kept blocks hold 8-bit groups (quantized variants) or are left alone (pruned)."""
    problems: list[str] = []
    layers = list(compressible_linears(model))
    if not layers:
        return ["no compressible Linear layers found"]
    kept_blocks = kept_blocks_regex(spec, model)
    for name, linear in layers:
        weight = linear.weight
        in_kept_block = bool(kept_blocks and re.match(kept_blocks, name))
        if spec.bits:
            bits = KEPT_BITS if in_kept_block else spec.bits
            size = group_size_for(linear.in_features)
            distinct = max_distinct_per_group(weight, size)
            span = max_grid_span(weight, size)
            if distinct > 2**bits:
                problems.append(f"{name}: {distinct} distinct values in a group of {size} (> 2^{bits})")
            elif span > 2**bits - 1 + 0.5:
                problems.append(f"{name}: a group of {size} is not on a grid of 2^{bits} levels")
        elif in_kept_block:
            continue
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
