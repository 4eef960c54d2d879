"""Compression really happens: sparsity patterns and at most 2^bits values per group."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compressors import compressed_model, parse_variant, recipe_for
from compressors.calibration import fallback_calibration
from compressors.layers import group_size_for, targets_by_group_size
from compressors.pruning import magnitude_mask
from compressors.verify import compression_problems, max_distinct_per_group, max_grid_span
from trustgate.models import ModelHandle, load_model, weights_fingerprint
from trustgate.util.errors import TrustgateError


@pytest.mark.parametrize(("width", "size"), [(576, 64), (1536, 128), (4096, 128), (96, 32), (5120, 128), (100, 4)])
def test_group_size_is_128_or_the_largest_power_of_two_dividing_the_width(width: int, size: int) -> None:
    assert group_size_for(width) == size


@pytest.mark.parametrize("structure", [(2, 4), (1, 2), (4, 8)])
def test_magnitude_mask_keeps_the_largest_n_in_every_m(structure: tuple[int, int]) -> None:
    torch.manual_seed(0)
    weight = torch.randn(16, 64)
    keep = magnitude_mask(weight, 0.5, structure)
    kept, block = structure
    assert (keep.reshape(16, -1, block).sum(-1) == kept).all()
    blocks, mask = weight.abs().reshape(16, -1, block), keep.reshape(16, -1, block)
    assert (
        blocks[mask].reshape(16, -1, kept).min(-1).values >= blocks[~mask].reshape(16, -1, block - kept).max(-1).values
    ).all()


def test_unstructured_magnitude_mask_drops_the_smallest_half() -> None:
    weight = torch.arange(1, 101, dtype=torch.float32).reshape(10, 10)
    keep = magnitude_mask(weight, 0.5, None)
    assert keep.sum() == 50 and weight[keep].min() == 51


def test_distinct_values_are_counted_per_group() -> None:
    weight = torch.tensor([[0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    assert max_distinct_per_group(weight, 4) == 4
    assert max_distinct_per_group(weight, 8) == 6


@pytest.fixture(scope="module")
def tiny_base(tiny_llama_dir: Path) -> ModelHandle:
    return ModelHandle("dense", tiny_llama_dir, weights_fingerprint(tiny_llama_dir))


def test_group_targets_follow_each_layer_width(tiny_base: ModelHandle) -> None:
    model, _ = load_model(tiny_base.path, "cpu")
    targets = targets_by_group_size(model)
    assert set(targets) == {32, 128}  # width 96 -> 32; MLP width 256 -> 128
    assert "re:.*\\.down_proj$" in targets[128]


@pytest.mark.parametrize(
    "variant",
    [
        "gptq3+cal8",
        "gptq4+cal8",
        "gptq8+cal8",
        "awq4+cal8",
        "sparsegpt-2:4+cal8",
        "wanda-50+cal8",
        "wanda-1:2+cal8",
        "magnitude-4:8",
    ],
)
def test_each_method_compresses_every_layer(variant: str, tiny_base: ModelHandle, cache_root: Path) -> None:
    spec = parse_variant(variant)
    handle, metadata = compressed_model(spec, tiny_base, cache_root / "compression-test", calibration_source="fallback")
    assert handle.fingerprint != tiny_base.fingerprint
    model, _ = load_model(handle.path, "cpu")  # saved checkpoints load back with transformers
    assert compression_problems(model, spec) == []
    if spec.needs_calibration:
        assert metadata["calibration"].startswith("fallback:python-docstrings")


@pytest.mark.parametrize("variant", ["gptq3", "gptq4", "awq8", "wanda-2:4", "sparsegpt-4:8", "magnitude-50"])
def test_dense_weights_posing_as_a_variant_fail_verification(variant: str, tiny_base: ModelHandle) -> None:
    model, _ = load_model(tiny_base.path, "cpu")
    problems = compression_problems(model, parse_variant(variant))
    assert len(problems) == 2 * 7  # every Linear of both layers is flagged


def test_an_8_bit_grid_is_recognised_in_small_groups_whose_values_never_touch() -> None:
    # 32 weights on 256 levels: neighbouring levels rarely both occur, so the smallest gap is a
    # few grid steps; every gap is still a whole number of steps.
    levels = torch.tensor([[-120, -97, -60, -33, -3, 0, 5, 14, 35, 61, 90, 127] * 2 + [2, 4, 6, 8, 10, 12, 16, 18]])
    scale = 0.0123
    assert max_grid_span(levels.float() * scale, 32) == pytest.approx(247, abs=0.01)
    torch.manual_seed(0)
    assert max_grid_span(torch.randn(8, 32), 32) == float("inf")  # dense floats sit on no grid


@pytest.mark.parametrize("variant", ["gptq3+cal8", "awq4+cal8", "wanda-2:4+cal8", "magnitude-2:4"])
def test_a_remedy_keeps_its_blocks_at_higher_precision(variant: str, tiny_base: ModelHandle, cache_root: Path) -> None:
    plain = parse_variant(variant)
    spec = plain.keeping((1,))
    assert spec.kept_blocks == (1,) and spec.plain == variant and spec.family.endswith("-keep1")
    handle, metadata = compressed_model(spec, tiny_base, cache_root / "compression-test", calibration_source="fallback")
    model, _ = load_model(handle.path, "cpu")
    assert compression_problems(model, spec) == []  # block 0 as the plain variant, block 1 at 8 bits or dense
    as_plain = compression_problems(model, plain)
    assert len(as_plain) == 7 and all(".layers.1." in problem for problem in as_plain)
    assert metadata["recipe"] != recipe_for(plain, model)


def test_keeping_no_block_is_the_plain_variant() -> None:
    plain = parse_variant("gptq3")
    assert plain.keeping(()) is plain


def test_a_kept_block_the_model_does_not_have_is_named(tiny_base: ModelHandle) -> None:
    model, _ = load_model(tiny_base.path, "cpu")
    with pytest.raises(TrustgateError, match=r"blocks \[5\] do not exist: the base model has 2 decoder blocks"):
        recipe_for(parse_variant("gptq4").keeping((0, 5)), model)


def test_offline_calibration_is_seeded_and_reported() -> None:
    first, again, other = fallback_calibration(8, 0), fallback_calibration(8, 0), fallback_calibration(8, 1)
    assert first.texts == again.texts and first.texts != other.texts
    assert first.fingerprint != other.fingerprint
    assert "fallback" in first.describe() and "seed 0" in first.describe()
