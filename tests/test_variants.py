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


@pytest.mark.parametrize("text", ["~\x00", "gptq4\x00", "a\tb"])
def test_a_control_character_is_a_usage_error(text: str) -> None:
    # hypothesis found "~\x00": pathlib raised "embedded null byte" from expanduser
    with pytest.raises(TrustgateError, match="control characters"):
        parse_variant(text)


def test_a_remedy_recipe_is_its_plain_variant_with_kept_blocks(tmp_path) -> None:
    recipe = tmp_path / "remedy.toml"
    recipe.write_text('variant = "gptq3+cal16@seed1"\nkept_blocks = [7, 2, 7]\n[found]\nverdict = "REMEDY"\n')
    spec = parse_variant(f"recipe:{recipe}")
    assert (spec.method, spec.bits, spec.seed, spec.calibration_samples) == ("gptq", 3, 1, 16)
    assert spec.kept_blocks == (2, 7) and spec.plain == "gptq3+cal16@seed1" and spec.name == f"recipe:{recipe}"
    assert spec.family == "gptq3-keep2" and spec.kept_precision == "int8"
    assert parse_variant("wanda-2:4").keeping((3, 1)).name == "wanda-2:4~keep[1,3]"
    assert parse_variant("wanda-2:4").keeping((3,)).kept_precision == "dense"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("variant = 'gptq3'\nkept_blocks = [1]\nextra = 1\n", "unknown keys ['extra']"),
        ("variant = 'gptq3'\n", "it needs `variant` (a string) and `kept_blocks` (a list)"),
        ("variant = 'gptq3'\nkept_blocks = [-1]\n", "kept_blocks must be block numbers >= 0"),
        ("variant = 'dense'\nkept_blocks = [1]\n", "dense is not a variant trustgate compresses"),
        ("variant = 'gptq3\n", "not valid TOML"),
        ("variant = 'gptq5'\nkept_blocks = [1]\n", "5-bit is not offered"),
    ],
)
def test_a_malformed_recipe_names_the_file_and_the_problem(tmp_path, text: str, problem: str) -> None:
    recipe = tmp_path / "remedy.toml"
    recipe.write_text(text)
    with pytest.raises(TrustgateError) as caught:
        parse_variant(f"recipe:{recipe}")
    assert problem in str(caught.value)
    assert str(recipe) in str(caught.value) or "gptq5" in str(caught.value)
