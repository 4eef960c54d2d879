"""Decoder blocks: the unit a remedy keeps at higher precision.

One definition for both sides: `compressors/` writes recipes that spare blocks by these names,
and the remedy's ranking restores blocks by the same names in a loaded model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


def decoder_blocks(model: Any) -> list[str]:
    """Module names of the decoder blocks in order ("model.layers.0", ...): the children of the
    ModuleList that holds the most Linear layers (the stack of transformer layers)."""
    import torch

    best: tuple[int, str, int] | None = None
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or not len(module):
            continue
        linears = sum(isinstance(m, torch.nn.Linear) for m in module.modules())
        if linears and (best is None or linears > best[0]):
            best = (linears, name, len(module))
    if best is None:
        raise ValueError("the model has no stack of decoder blocks (no ModuleList of Linear layers)")
    _, prefix, count = best
    return [f"{prefix}.{index}" for index in range(count)]


def block_index(module_name: str, blocks: Sequence[str]) -> int | None:
    """The block a module belongs to, or None for modules outside the stack (embeddings, head)."""
    for index, block in enumerate(blocks):
        if module_name == block or module_name.startswith(block + "."):
            return index
    return None


def blocks_pattern(blocks: Sequence[str], kept: Sequence[int]) -> str:
    """A regex (without llm-compressor's "re:" prefix) matching every module inside the kept blocks."""
    if not kept:
        raise ValueError("no kept blocks")
    prefix = blocks[0].rsplit(".", 1)[0]
    numbers = "|".join(str(index) for index in sorted(set(kept)))
    return rf"^{re.escape(prefix)}\.(?:{numbers})\."
