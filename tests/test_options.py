"""trustgate's options coexist with the pytest plugins teams install beside it, and each option's
validator stops a value that cannot be right at start-up (exit 4, one line naming it)."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synthetic import ROOT, run_fake_suite
from trustgate.plugin import options
from trustgate.plugin.options import OPTIONS

# The option strings of the plugins most often installed beside trustgate, as their releases
# declare them (read from pytest-profiling 1.8.1, pytest-cov 7.1.0, pytest-randomly 5.1.0,
# pytest-benchmark 5.3.1 and pytest-timeout 2.4.0 by calling each one's pytest_addoption).
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "pytest_profiling": ("--profile", "--profile-svg", "--pstats-dir", "--element-number", "--strip-dirs"),
    "pytest_cov": ("--cov", "--cov-append", "--cov-branch", "--cov-config", "--cov-context", "--cov-fail-under",
                   "--cov-precision", "--cov-report", "--cov-reset", "--no-cov", "--no-cov-on-fail"),
    "pytest_randomly": ("--randomly-dont-reorganize", "--randomly-dont-reset-seed", "--randomly-seed"),
    "pytest_benchmark": ("--benchmark-autosave", "--benchmark-calibration-precision", "--benchmark-columns",
                         "--benchmark-compare", "--benchmark-compare-fail", "--benchmark-disable", "--benchmark-enable",
                         "--benchmark-json", "--benchmark-max-time", "--benchmark-min-rounds", "--benchmark-only",
                         "--benchmark-save", "--benchmark-skip", "--benchmark-sort", "--benchmark-storage",
                         "--benchmark-timer", "--benchmark-warmup", "--benchmark-disable-gc", "--benchmark-verbose"),
    "pytest_timeout": ("--timeout", "--timeout-method", "--timeout_method", "--session-timeout",
                       "--timeout-disable-debugger-detection"),
}  # fmt: skip

SHIM = """
def pytest_addoption(parser):
    group = parser.getgroup("{name}")
    for flag in {flags!r}:
        group.addoption(flag, dest="{name}_" + flag.strip("-").replace("-", "_"), action="store_true")
"""


def test_every_option_but_model_carries_the_trust_prefix_and_a_validator():
    flags = [option.flag for option in OPTIONS]
    assert len(flags) == len(set(flags)) and len({o.dest for o in OPTIONS}) == len(OPTIONS)
    assert [f for f in flags if not f.startswith("--trust-")] == ["--model"]
    for option in OPTIONS:
        assert option.help
        assert option.action == "store_true" or callable(option.type), option.flag


def test_no_option_string_collides_with_a_neighbouring_plugin():
    ours = {option.flag for option in OPTIONS}
    assert not ours & {flag for flags in NEIGHBOURS.values() for flag in flags}


@pytest.mark.parametrize("neighbour", sorted(NEIGHBOURS))
def test_help_and_a_gate_run_work_beside_each_neighbouring_plugin(tmp_path: Path, neighbour: str):
    """`pytest --help` and a (synthetic) gate run with the neighbour's options registered: before
    the prefix, pytest-profiling's --profile made even `pytest --help` crash with exit 3."""
    (tmp_path / f"{neighbour}_shim.py").write_text(SHIM.format(name=neighbour, flags=NEIGHBOURS[neighbour]))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    shown = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", f"{neighbour}_shim", "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert NEIGHBOURS[neighbour][0] in shown.stdout and "--trust-limit" in shown.stdout
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / f"{neighbour}_shim.py").write_text(SHIM.format(name=neighbour, flags=NEIGHBOURS[neighbour]))
    run = run_fake_suite(tmp_path / "suite", "-p", f"{neighbour}_shim", "-k", "utility and overall")
    assert run.returncode == 1, run.stdout + run.stderr  # the synthetic magnitude-2:4 fails, as in test_report
    assert "FAIL utility" in run.stdout


def test_the_plugin_registers_as_trustgate_so_it_can_be_turned_off(tmp_path: Path):
    points = [p for p in importlib.metadata.entry_points(group="pytest11") if p.value.startswith("trustgate")]
    assert [(p.name, p.value) for p in points] == [("trustgate", "trustgate.plugin")]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    def help_text(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pytest", *args, "--help"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "--trust-limit" in help_text()
    assert "--trust-limit" not in help_text("-p", "no:trustgate")


@pytest.mark.parametrize(
    ("validator", "value", "problem"),
    [
        (options.positive_minutes, "nan", "is not a finite number"),  # defect 15: NaN switched the budget off
        (options.positive_minutes, "inf", "is not a finite number"),
        (options.positive_minutes, "0", "must be positive"),
        (options.percent, "-5", "must be 0 or more percent"),
        (options.items_per_scenario, "-3", "is negative"),
        (options.positive_int, "0", "must be positive"),
        (options.positive_int, "two", "is not a whole number"),
        (options.endpoint, "http://h:99999", "has a port outside 1-65535"),  # defect 17
        (options.endpoint, "gptq4=http://h:0", "has a port outside 1-65535"),
        (options.endpoint, "ftp://h:80", "is not an http(s) URL"),
        (options.device, "foo", "is not a device"),
        (options.one_of("transformers", "vllm"), "tgi", "is not offered; choose transformers, vllm"),
    ],
)
def test_a_value_that_cannot_be_right_is_refused_by_its_validator(validator, value: str, problem: str):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        validator(value)
    assert problem in str(refused.value)


def test_files_and_folders_are_checked_before_they_are_read(tmp_path: Path):
    fifo = tmp_path / "policy.fifo"
    os.mkfifo(fifo)
    latin = tmp_path / "latin.toml"
    latin.write_bytes("# café\n".encode("latin-1"))
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\n")
    for validator, path, problem in [
        (options.text_file, fifo, "not a regular file"),  # defect 18: reading a FIFO hung forever
        (options.text_file, tmp_path, "is a folder"),  # defect 7: INTERNALERROR, exit 3
        (options.text_file, latin, "is not UTF-8 text"),
        (options.folder, latin, "is a file, not a folder"),  # defect 5
        (options.executable, script, "is not executable"),  # defect 16: caught only at test time
        (options.executable, tmp_path / "missing", "no such interpreter"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError) as refused:
            validator(str(path))
        assert problem in str(refused.value)
    script.chmod(0o755)
    assert options.executable(str(script)) == str(script)


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--trust-remedy-minutes", "nan"], "argument --trust-remedy-minutes: 'nan' is not a finite number"),
        (["--trust-engine-url", "http://h:99999"], "argument --trust-engine-url: 'http://h:99999' has a port outside"),
        (["--trust-thresholds", "."], "argument --trust-thresholds: '.' is a folder"),
        (["--trust-report", "conftest.py"], "argument --trust-report: 'conftest.py' is a file, not a folder"),
        (["--trust-cache-dir", "/proc/trustgate"], "--trust-cache-dir /proc/trustgate: cannot be written"),
        (["--alluredir", "conftest.py"], "--alluredir conftest.py: is a file"),
        (["--model", "./no-such-checkpoint"], "--model ./no-such-checkpoint: no such folder"),  # defect 4
        (["--model", "no-such-org/no-such-model"], "--model no-such-org/no-such-model: not in the local hub cache"),
    ],
)
def test_a_bad_option_is_a_usage_error_at_start_up(tmp_path: Path, monkeypatch, args: list[str], culprit: str):
    """On the synthetic suite, so nothing heavy runs: exit 4, the culprit once, no traceback."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as in CI: a hub id must then be cached
    run = run_fake_suite(tmp_path, *args)
    output = run.stdout + run.stderr
    assert run.returncode == 4, output
    assert output.count(culprit) == 1, output
    assert "Traceback" not in output and "INTERNALERROR" not in output


def test_junitxml_under_xunit2_gives_no_record_property_warning(tmp_path: Path):
    """Defect 14: every trust test warned about record_property under xunit2."""
    junit = tmp_path / "junit.xml"
    run = run_fake_suite(tmp_path, "-k", "utility and overall", "--junitxml", str(junit), "-o", "junit_family=xunit2")
    output = run.stdout + run.stderr
    assert run.returncode == 1 and junit.is_file(), output
    assert "record_property" not in output and "FAIL utility" in output


def test_a_checkpoint_you_bring_with_a_truncated_safetensors_file_is_refused_at_start_up(tmp_path: Path):
    """Defect 12: a truncated safetensors file surfaced as a raw transformers error after the dense run."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "my-gptq4"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    save_file({"weight": torch.zeros(64, 64)}, folder / "model.safetensors")
    whole = (folder / "model.safetensors").read_bytes()
    from trustgate.models import check_checkpoint_name

    assert check_checkpoint_name("--model", str(folder)) == folder.resolve()
    (folder / "model.safetensors").write_bytes(whole[: len(whole) // 2])
    run = run_fake_suite(tmp_path / "suite", "--model", str(folder))
    output = run.stdout + run.stderr
    assert run.returncode == 4, output
    assert f"--model {folder}: model.safetensors is truncated" in output and "Traceback" not in output


def test_readmes_option_table_lists_every_option_by_its_name():
    import re

    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `--")]
    documented = {flag for row in rows for flag in re.findall(r"`(--[a-z-]+)", row.split(" | ")[0])}
    assert documented == {option.flag for option in OPTIONS}


def test_an_old_spelling_says_its_new_name_unless_another_plugin_owns_it(tmp_path: Path):
    run = run_fake_suite(tmp_path / "old", "--limit", "8")
    assert run.returncode == 4 and "--limit: trustgate's options carry the --trust- prefix" in run.stdout + run.stderr
    assert "pass --trust-limit" in run.stdout + run.stderr
    suite = tmp_path / "profiling"
    suite.mkdir()
    flags = NEIGHBOURS["pytest_profiling"]
    (suite / "pytest_profiling_shim.py").write_text(SHIM.format(name="pytest_profiling", flags=flags))
    owned = run_fake_suite(suite, "-p", "pytest_profiling_shim", "--profile", "-k", "utility and overall")
    assert owned.returncode == 1 and "FAIL utility" in owned.stdout, owned.stdout + owned.stderr  # the gate ran
