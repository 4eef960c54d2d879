"""Which Linear layers compression touches, and the per-layer group-size rule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import torch

EXCLUDED = ("lm_head",)


def compressible_linears(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Linear]]:
    """Every Linear inside the decoder (the output head stays dense, as in the paper)."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] not in EXCLUDED:
            yield name, module


def group_size_for(in_features: int, preferred: int = 128) -> int:
    """128, or the largest power of two dividing the layer width when 128 does not."""
    if in_features % preferred == 0:
        return preferred
    size = 1
    while in_features % (size * 2) == 0 and size * 2 < preferred:
        size *= 2
    return size


def targets_by_group_size(model: torch.nn.Module, preferred: int = 128) -> dict[int, list[str]]:
    """Target patterns per group size: one regex per layer kind where a kind has one width."""
    sizes_by_leaf: dict[str, set[int]] = defaultdict(set)
    names_by_leaf: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for name, linear in compressible_linears(model):
        leaf = name.split(".")[-1]
        size = group_size_for(linear.in_features, preferred)
        sizes_by_leaf[leaf].add(size)
        names_by_leaf[leaf].append((name, size))
    targets: dict[int, list[str]] = defaultdict(list)
    for leaf, sizes in sorted(sizes_by_leaf.items()):
        if len(sizes) == 1:
            targets[next(iter(sizes))].append(f"re:.*\\.{leaf}$")
        else:
            for name, size in names_by_leaf[leaf]:
                targets[size].append(name)
    return dict(targets)
