"""What a checkpoint costs to ship: the bytes of the weights a compressed format must store.

Quantized checkpoints are packed (compressed-tensors), so their integer tensors count in full;
pruned checkpoints are saved dense with zeros, so a floating tensor counts its non-zero values
only (what a sparse format stores, index metadata aside). One measure for every variant, so
that a remedy's size cost compares like with like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


def effective_bytes(folder: Path) -> int:
    import torch
    from safetensors import safe_open

    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open has no __iter__)
                tensor = weights.get_tensor(name)
                count = int(torch.count_nonzero(tensor)) if tensor.is_floating_point() else tensor.numel()
                total += count * tensor.element_size()
    return total


def stored_itemsize(folder: Path) -> int:
    """Bytes per value of the checkpoint's floating weights (what a restored pruned weight costs)."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118
                tensor = weights.get_slice(name)
                if tensor.get_dtype() in ("F32", "F16", "BF16", "F64"):
                    return {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}[tensor.get_dtype()]
    return 4


def kept_block_cost(
    block_parameters: Mapping[int, int], blocks: Iterable[int], bits: int | None, sparsity: float | None, itemsize: int
) -> int:
    """Estimated extra bytes of keeping `blocks`: 8 instead of `bits` bits per weight for a
    quantized variant; the pruned share of the weights back, at `itemsize`, for a pruned one."""
    weights = sum(block_parameters.get(index, 0) for index in blocks)
    if bits:
        return weights * max(0, 8 - bits) // 8
    return int(weights * (sparsity or 0.0) * itemsize)
