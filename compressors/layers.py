"""Which Linear layers compression touches, the per-layer group-size rule, and the decoder
blocks a remedy recipe keeps at higher precision."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

import torch

from compressors.variants import VariantSpec
from trustgate.models import blocks_pattern, decoder_blocks
from trustgate.util.errors import TrustgateError

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


def kept_blocks_regex(spec: VariantSpec, model: torch.nn.Module) -> str | None:
    """The regex (no "re:" prefix) of the modules in the blocks `spec` keeps; None when it keeps none."""
    if not spec.kept_blocks:
        return None
    blocks = decoder_blocks(model)
    missing = [index for index in spec.kept_blocks if index >= len(blocks)]
    if missing:
        raise TrustgateError(
            f"--model {spec.name}",
            f"blocks {missing} do not exist: the base model has {len(blocks)} decoder blocks",
            f"keep blocks among 0..{len(blocks) - 1}",
        )
    return blocks_pattern(blocks, spec.kept_blocks)


def split_targets(targets: list[str], kept: str, model_names: list[str]) -> tuple[list[str], list[str]]:
    """`targets` split into (outside the kept blocks, inside them), as disjoint patterns, so that
    every loader (compressed-tensors, vLLM) resolves each module to exactly one scheme. A pattern
    that matches none of `model_names` is left out (keeping every block empties the plain side)."""
    outside, inside = [], []
    for target in targets:
        if target.startswith("re:"):
            body = target[3:]
            outside.append(f"re:(?!{kept[1:]}){body}")
            inside.append(f"re:{kept}{body}")
        else:  # an exact module name
            (inside if re.match(kept, target) else outside).append(target)

    def present(patterns: list[str]) -> list[str]:
        return [t for t in patterns if any(_matches(t, name) for name in model_names)]

    return present(outside), present(inside)


def _matches(target: str, name: str) -> bool:
    return re.match(target[3:], name) is not None if target.startswith("re:") else target == name
