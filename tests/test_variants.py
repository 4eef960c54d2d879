"""The variant grammar of DESIGN.md section 4."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from compressors.variants import VALID_CHOICES, parse_variant, parse_variants
from trustgate.util.errors import TrustgateError


@pytest.mark.parametrize("bits", [3, 4, 8])
@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_quantizers_at_paper_bit_widths(method: str, bits: int) -> None:
    spec = parse_variant(f"{method}{bits}")
    assert (spec.method, spec.bits, spec.seed, spec.calibration_samples) == (method, bits, 0, 128)


@pytest.mark.parametrize("method", ["magnitude", "sparsegpt", "wanda"])
@pytest.mark.parametrize(("pattern", "structure"), [("2:4", (2, 4)), ("1:2", (1, 2)), ("4:8", (4, 8))])
def test_semi_structured_pruning(method: str, pattern: str, structure: tuple[int, int]) -> None:
    spec = parse_variant(f"{method}-{pattern}")
    assert spec.method == method and spec.structure == structure and spec.sparsity == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["magnitude", "sparsegpt", "wanda"])
def test_unstructured_pruning(method: str) -> None:
    spec = parse_variant(f"{method}-50")
    assert spec.structure is None and spec.sparsity == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("name", "seed", "samples"),
    [("gptq3@seed2", 2, 128), ("awq4+cal32", 0, 32), ("wanda-2:4+cal16@seed1", 1, 16), ("sparsegpt-50@seed0", 0, 128)],
)
def test_seed_and_calibration_suffixes_in_any_order(name: str, seed: int, samples: int) -> None:
    spec = parse_variant(name)
    assert (spec.seed, spec.calibration_samples, spec.name) == (seed, samples, name)


def test_seeds_of_one_method_share_a_family_and_differ_in_seed() -> None:
    seeds = [parse_variant(f"gptq3+cal16@seed{n}") for n in range(3)]
    assert {s.family for s in seeds} == {"gptq3"} and {s.unseeded_name for s in seeds} == {"gptq3+cal16"}
    assert [s.seed for s in seeds] == [0, 1, 2]


def test_dense_and_checkpoints(tmp_path) -> None:
    assert parse_variant("dense").is_dense
    local = parse_variant(str(tmp_path))
    assert local.method == "checkpoint" and local.checkpoint == str(tmp_path.resolve())
    hub = parse_variant("TheBloke/Llama-2-13B-chat-GPTQ")
    assert hub.method == "checkpoint" and hub.checkpoint == "TheBloke/Llama-2-13B-chat-GPTQ"


def test_magnitude_pruning_takes_no_calibration_suffix() -> None:
    with pytest.raises(TrustgateError, match="uses no calibration data"):
        parse_variant("magnitude-2:4@seed1")


@pytest.mark.parametrize(
    "name",
    [
        "gptq5",
        "awq2",
        "wanda-3:4",
        "sparsegpt-0",
        "magnitude-100",
        "foo",
        "gptq4@seed1@seed2",
        "gptq4+cal0",
        "gptq4#1",
        "",
    ],
)
def test_bad_names_name_the_culprit_and_the_choices(name: str) -> None:
    with pytest.raises(TrustgateError) as raised:
        parse_variant(name)
    assert f"--model {name}" in str(raised.value)
    assert VALID_CHOICES in str(raised.value)


def test_repeated_variants_are_deduplicated_in_order() -> None:
    assert [s.name for s in parse_variants(["awq4", "gptq4", "awq4"])] == ["awq4", "gptq4"]


@given(st.text(max_size=40))
@example("~0")  # a user with no home: pathlib's expanduser raises RuntimeError
def test_any_text_parses_or_fails_with_a_usage_error(text: str) -> None:
    with contextlib.suppress(TrustgateError):
        parse_variant(text)
