"""GPTQ and AWQ weight-only quantization recipes for llm-compressor."""

from __future__ import annotations

from typing import Any

import torch

from compressors.layers import EXCLUDED, compressible_linears, kept_blocks_regex, split_targets, targets_by_group_size
from compressors.variants import VariantSpec

KEPT_BITS = 8  # what a remedy keeps a quantized variant's sensitive blocks at


def quantization_recipe(spec: VariantSpec, model: torch.nn.Module) -> dict[str, Any]:
    """The llm-compressor recipe (its YAML schema, as a dict) for a GPTQ or AWQ variant."""
    # The paper's GPTQ checkpoints are symmetric; AWQ's are asymmetric (zero point per group).
    symmetric = spec.method == "gptq"
    bits = spec.bits
    assert bits, f"{spec.name} is not a quantized variant"

    def scheme(targets: list[str], bits: int, size: int) -> dict[str, Any]:
        weights = {"num_bits": bits, "type": "int", "symmetric": symmetric, "strategy": "group", "group_size": size}
        return {"targets": targets, "weights": weights}

    kept = kept_blocks_regex(spec, model)
    names = [name for name, _ in compressible_linears(model)] if kept else []
    config_groups: dict[str, Any] = {}
    for size, targets in sorted(targets_by_group_size(model).items()):
        if kept is None:
            config_groups[f"group_{size}"] = scheme(targets, bits, size)
            continue
        # A remedy: the kept blocks' layers get 8-bit groups of the same size, the rest the plain bits.
        outside, inside = split_targets(targets, kept, names)
        if outside:
            config_groups[f"group_{size}"] = scheme(outside, bits, size)
        if inside:
            config_groups[f"kept_{size}"] = scheme(inside, KEPT_BITS, size)
    quantization = {"config_groups": config_groups, "ignore": list(EXCLUDED)}
    if spec.method == "gptq":
        modifiers = {"GPTQModifier": quantization}
    else:  # AWQ: scale the weights (its transform), then round them
        modifiers = {"AWQModifier": {}, "QuantizationModifier": quantization}
    return {"default_stage": {"default_modifiers": modifiers}}


def allow_awq_without_accelerator() -> None:
    """Work around llm-compressor 0.14's AWQ on CPU-only machines.

    AWQModifier._apply_smoothing (llmcompressor/modifiers/transform/awq/base.py) calls
    IntermediatesCache.pin_memory (llmcompressor/pipelines/cache.py), and pinning raises
    "Cannot access accelerator device when none is available" without a GPU. Pinning only
    speeds host-to-device copies, so with no accelerator it is skipped; with one, nothing changes.
    """
    if torch.accelerator.is_available():
        return
    from llmcompressor.pipelines.cache import IntermediatesCache

    IntermediatesCache.pin_memory = lambda self, batch_index, input_names=None: None  # type: ignore[method-assign]
