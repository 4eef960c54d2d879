"""The gate end to end, as a user runs it: `pytest trust_tests --model ... -k stereotype`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from tests.conftest import ROOT


def _verdicts(report_dir: Path) -> list[dict]:
    return json.loads((report_dir / "summary.json").read_text())["comparisons"]


def test_tiny_model_gate_scores_every_scenario_and_writes_reports(run_gate, tiny_llama_dir: Path) -> None:
    run = run_gate(
        "--trust-base-model",
        str(tiny_llama_dir),
        "--model",
        "magnitude-2:4",
        "-k",
        "stereotype",
        "--trust-limit",
        "4",
        "--trust-calibration",
        "fallback",
    )
    assert run.returncode in (0, 1), run.output  # passed or gated, never an error
    verdicts = _verdicts(run.report_dir)
    assert sorted(v["scenario"] for v in verdicts) == ["benign", "overall", "targeted", "untargeted"]
    for verdict in verdicts:
        assert verdict["variant"] == "magnitude-2:4" and verdict["n_items"] > 0
        assert 0 <= verdict["dense_score"] <= 100 and 0 <= verdict["variant_refusal"] <= 100
    records = sorted(p.relative_to(run.report_dir).as_posix() for p in run.report_dir.rglob("*.jsonl"))
    assert "records/dense/stereotype/benign.jsonl" in records
    assert "records/magnitude-2_4/stereotype/targeted.jsonl" in records
    assert "trustgate" in run.output and "stereotype/overall" in run.output  # terminal summary table
    assert (run.report_dir / "summary.md").read_text().count("| dense |") == 1


def test_a_base_model_that_never_answers_is_inconclusive_never_a_pass(
    run_gate, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    # The random tiny model gives no scorable stereotype answer: dense against itself has a zero
    # drop, yet the items say nothing, so the blocking checks fail as INCONCLUSIVE...
    args = ("--trust-base-model", str(tiny_llama_dir), "--model", "dense", "-k", "stereotype", "--trust-limit", "4")
    run = run_gate(*args)
    assert run.returncode == 1, run.output
    verdicts = _verdicts(run.report_dir)
    assert len(verdicts) == 4 and all(v["drop"] == 0 and v["verdict"] == "INCONCLUSIVE" for v in verdicts)
    assert "the base model does not answer this scenario" in run.output
    # ... and pass, still reported INCONCLUSIVE, where the policy says inconclusive = "warn".
    from tests.conftest import ROOT

    policy = tmp_path / "warn.toml"
    policy.write_text((ROOT / "thresholds.toml").read_text().replace('inconclusive = "fail"', 'inconclusive = "warn"'))
    warned = run_gate(*args, "--trust-thresholds", str(policy))
    assert warned.returncode == 0, warned.output
    assert all(v["verdict"] == "INCONCLUSIVE" and v["passed"] for v in _verdicts(warned.report_dir))


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--model", "gptq5"], "--model gptq5: 5-bit is not offered"),
        (["--model", "awq4", "--model", "wonder-2:4"], "--model wonder-2:4: unknown variant; valid variants: dense"),
        (["--trust-data", "/nonexistent/decodingtrust"], "--trust-data /nonexistent/decodingtrust: no such folder"),
        (["--trust-profile", "nightly"], "nightly: no such profile"),
        (["--trust-limit", "-3"], "argument --trust-limit: '-3' is negative"),
        (["--trust-device", "foo"], "argument --trust-device: 'foo' is not a device; choose auto, cpu, cuda or cuda:N"),
        (["--trust-device", "cuda:99"], "--trust-device cuda:99: no such CUDA device"),
        (["--trust-batch-size", "0"], "argument --trust-batch-size: '0' must be positive"),
        (["--trust-batch-size", "-3"], "argument --trust-batch-size: '-3' must be positive"),
        (["--trust-base-model", "/nonexistent"], "--trust-base-model /nonexistent: no such folder"),
        (["--trust-base-model", "not a/hub id!"], "--trust-base-model not a/hub id!: not a hub id of the form"),
        (["--trust-calibration", "c4"], "--trust-calibration c4: the model hub is unreachable"),
        (["--trust-engine-url", "http://h:1"], "--trust-engine-url http://h:1: only the openai engine uses it"),
        (["--trust-engine", "openai", "--model", "dense"], "--trust-engine openai: no --trust-engine-url for dense"),
        (["--trust-engine", "openai", "--trust-engine-url", "awq4=http://h:1"], "awq4 is not a model of this run"),
        (
            ["--trust-engine", "vllm", "--trust-vllm-python", "/nonexistent/python"],
            "argument --trust-vllm-python: '/nonexistent/python' is no such interpreter",
        ),
        (["--trust-remedy", "--trust-remedy-probes", "0"], "argument --trust-remedy-probes: '0' must be positive"),
        (["--trust-remedy", "--trust-remedy-max-size", "-5"], "'-5' must be 0 or more percent"),
        (["--model", "recipe:/nonexistent/remedy.toml"], "--model recipe:/nonexistent/remedy.toml: cannot read"),
    ],
)
def test_user_errors_end_with_a_usage_error_naming_the_culprit(run_gate, args: list[str], culprit: str) -> None:
    run = run_gate(*args)
    assert run.returncode == 4, run.output
    assert run.output.count(culprit) == 1, run.output  # once, at configure time, not per test
    assert "Traceback" not in run.output


@pytest.mark.parametrize(
    ("policy", "culprit"),
    [
        ("[gate\n", "is not valid TOML"),
        (
            "[gate]\nmargin = 5.0\nmax_refusal_rise = 10.0\n[dimensions.toxcity]\n[profiles.ci]\n",
            "unknown dimension 'toxcity'",
        ),
        ('[gate]\nmargin = "lots"\nmax_refusal_rise = 10.0\n[profiles.ci]\n', "gate.margin"),
        (
            "[gate]\nmargin = 5.0\nmax_refusal_rise = 10.0\n[dimensions.stereotype.scenarios.bengin]\n[profiles.ci]\n",
            "dimensions.stereotype.scenarios.bengin: unknown scenario; valid scenarios of stereotype: benign",
        ),
        (
            "[gate]\nmargin = 5.0\nmax_refusal_rise = 10.0\n[profiles.ci.dimensions.stereotype]\n"
            "scenario_limits = { bengin = 1 }\n",
            "profiles.ci.dimensions.stereotype.scenario_limits.bengin: unknown scenario",
        ),
    ],
)
def test_malformed_thresholds_file_is_a_usage_error(run_gate, tmp_path: Path, policy: str, culprit: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(policy)
    run = run_gate("--trust-thresholds", str(path))
    assert run.returncode == 4, run.output
    assert f"thresholds file {path}" in run.output and culprit in run.output


def _sabotage(dense_dir: Path, target: Path) -> Path:
    """The embedded model with its attention outputs and MLPs switched off: it cannot answer."""
    target.mkdir()
    for item in dense_dir.iterdir():
        if item.suffix == ".safetensors":
            weights = load_file(item)
            broken = {
                k: (v * 0 if k.endswith(("o_proj.weight", "down_proj.weight")) else v) for k, v in weights.items()
            }
            save_file(broken, target / item.name, metadata={"format": "pt"})
        elif item.is_file() and item.name != "trustgate-fingerprint.json":
            (target / item.name).write_bytes(item.read_bytes())
    return target


@pytest.mark.slow
def test_embedded_model_sabotaged_variant_fails_while_dense_passes(
    run_gate, embedded_model_dir: Path, tmp_path: Path
) -> None:
    # Embedded probes: on DecodingTrust's prompt (its task stated twice) the 135M model only
    # echoes the instruction, so it never answers and there would be nothing to lose.
    sabotaged = _sabotage(embedded_model_dir, tmp_path / "sabotaged")
    # 10 statements are 10 sample keys (each under 3 system prompts): the refusal rise is tested on 10
    # units, the fewest a jackknife decides on (kernel.MIN_JACKKNIFE_UNITS). With -k stereotype the
    # family is this one check (alpha 5%); half of it goes to the rise here (the shipped 5% share
    # proves a rise on so few units only beyond about 60 points).
    policy = tmp_path / "thresholds.toml"
    shipped = (ROOT / "thresholds.toml").read_text()
    policy.write_text(shipped.replace("rise_alpha_share = 0.05", "rise_alpha_share = 0.5"))
    run = run_gate(
        "--model", "dense", "--model", str(sabotaged), "-k", "stereotype", "--trust-limit", "10",
        "--trust-thresholds", str(policy),
    )  # fmt: skip
    assert run.returncode == 1, run.output
    verdicts = {(v["variant"], v["scenario"]): v for v in _verdicts(run.report_dir)}
    assert len(verdicts) == 8
    for (variant, _), verdict in verdicts.items():
        if variant == "dense":  # dense against itself never fails; where it does not answer, it proves nothing
            # (on 10 statements nothing changed proves no drop within 5 points either: PASS or too few items)
            expected = {"INCONCLUSIVE"} if verdict["dense_refusal"] > 90 else {"PASS", "INCONCLUSIVE"}
            assert verdict["verdict"] in expected and verdict["drop"] == 0, verdict
    overall = verdicts[(str(sabotaged), "overall")]
    assert overall["dense_refusal"] < 90 and overall["variant_refusal"] == 100
    # It never says "I agree", so its bias score looks perfect: the refusal bound is what catches it.
    assert overall["variant_score"] >= overall["dense_score"]
    assert not overall["passed"]
    assert any("refusal/no-answer rate rose" in f for f in overall["failures"])
    scenarios = [v for (variant, s), v in verdicts.items() if variant == str(sabotaged) and s != "overall"]
    for verdict in scenarios:
        # A scenario reports its finding (WARN) and never blocks; the dimension's overall check does.
        assert verdict["tier"] == "informational" and verdict["verdict"] != "FAIL", verdict["scenario"]
        if verdict["dense_refusal"] <= 100 - 10 - 1e-9:
            assert (verdict["verdict"] == "WARN") == bool(verdict["failures"]), verdict["scenario"]
    # On 10 items a rise is a finding only where it is shown: where dense answers nearly every item
    # (benign), losing them all is; where dense already refuses most, a few more refusals are not.
    assert any(v["verdict"] == "WARN" for v in scenarios)
    assert "FAIL stereotype/overall" in run.output


def test_data_folder_outside_the_repository_is_read_as_the_option_value(tmp_path: Path) -> None:
    """`pytest --trust-data ../shared/decodingtrust` (with a space) must keep pytest.ini in force."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    outside = tmp_path / "decodingtrust"
    outside.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "--model",
            "dense",
            "-k",
            "stereotype",
            "--trust-data",
            str(outside),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trust_tests/test_stereotype.py::test_stereotype[dense-benign]" in done.stdout
    assert "tests/" not in done.stdout.replace("trust_tests/", "")  # testpaths from pytest.ini still apply
