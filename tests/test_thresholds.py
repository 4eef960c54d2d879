"""thresholds.toml: the shipped policy loads; every malformed file is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustgate.dimensions.registry import NAMES as DIMENSION_NAMES
from trustgate.gate.policy import load_thresholds
from trustgate.util.errors import TrustgateError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "thresholds.toml"
MINIMAL = """
[gate]
margin = 5.0
max_refusal_rise = 10.0
[profiles.ci]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.toml"
    path.write_text(text)
    return path


def test_shipped_policy_covers_every_dimension_in_both_profiles() -> None:
    thresholds = load_thresholds(SHIPPED)
    assert set(thresholds.dimensions) == set(DIMENSION_NAMES)
    assert {"ci", "release"} <= set(thresholds.profiles)
    for profile in ("ci", "release"):
        assert set(thresholds.profiles[profile].dimensions) == set(DIMENSION_NAMES)
    release = thresholds.evaluation_size("release", "stereotype")
    assert (release.samples, release.temperature, release.max_new_tokens, release.limit) == (25, 1.0, 150, 0)


def test_most_specific_setting_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + """
[dimensions.stereotype]
margin = 3.0
rule = "safety_proven"
[dimensions.stereotype.scenarios.targeted]
margin = 8.0
""",
    )
    thresholds = load_thresholds(path)
    assert thresholds.policy("stereotype", "targeted").margin == 8.0
    assert thresholds.policy("stereotype", "targeted").rule == "safety_proven"
    assert thresholds.policy("stereotype", "benign").margin == 3.0
    assert thresholds.policy("toxicity", None).margin == 5.0
    assert thresholds.policy("toxicity", None).rule == "point"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[gate\nmargin = 5", "is not valid TOML"),
        (MINIMAL + "[dimensions.toxcity]\nmargin = 1.0\n", "unknown dimension 'toxcity'"),
        (MINIMAL.replace("margin = 5.0", 'margin = "five"'), "gate.margin"),
        (MINIMAL + "[dimensions.privacy]\nmargn = 1.0\n", "margn"),
        (MINIMAL + '[dimensions.privacy]\nrule = "vibes"\n', "rule"),
        (MINIMAL + "[dimensions.privacy]\nmargin = -1.0\n", "margin"),
        (MINIMAL.replace("margin = 5.0\n", ""), "gate.margin"),
        (MINIMAL + "[profiles.ci.dimensions.fairnes]\nlimit = 3\n", "unknown dimension 'fairnes'"),
    ],
)
def test_malformed_policy_is_one_error_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TrustgateError) as raised:
        load_thresholds(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_missing_file_and_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(TrustgateError, match="does not exist"):
        load_thresholds(tmp_path / "absent.toml")
    with pytest.raises(TrustgateError, match="choose one of: ci"):
        load_thresholds(write(tmp_path, MINIMAL), profile="nightly")


@pytest.mark.parametrize(("key", "value"), [("margin", True), ("margin", "7"), ("worst_seed", "yes"), ("seed", 1.5)])
def test_values_are_never_converted(tmp_path, key, value):
    # pydantic's lax mode once read margin = true as 1.0 and margin = "7" as 7 (issue 25, defect 10)
    text = (ROOT / "thresholds.toml").read_text()
    path = tmp_path / "thresholds.toml"
    rendered = {True: "true", "7": '"7"', "yes": '"yes"', 1.5: "1.5"}[value]
    path.write_text(_with_gate_key(text, key, rendered))
    with pytest.raises(TrustgateError, match=f"gate.{key}"):
        load_thresholds(path)


def _with_gate_key(text: str, key: str, rendered: str) -> str:
    lines = [line for line in text.splitlines() if not line.startswith(f"{key} = ")]
    index = lines.index("[gate]")
    return "\n".join([*lines[: index + 1], f"{key} = {rendered}", *lines[index + 1 :]]) + "\n"


def test_an_unknown_dimension_is_named_without_printing_the_whole_table(tmp_path):
    # the error once printed the parsed table (about 1,900 characters; issue 25, defect 20)
    path = tmp_path / "thresholds.toml"
    path.write_text((ROOT / "thresholds.toml").read_text() + "\n[dimensions.toxicty]\nmargin = 3.0\n")
    with pytest.raises(TrustgateError) as error:
        load_thresholds(path)
    assert "toxicty" in str(error.value) and len(str(error.value)) < 600
