"""Fail closed: a run that gated nothing is never green, and corrupt data is an error, not a skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synthetic import FAKE_CONFTEST, ROOT

MISSING_TEST = """
from tests.synthetic import make_dimension
from trustgate.util.errors import {error}

def load(_data, scenario):
    if scenario == "b":
        raise {error}("{culprit}", "{problem}", "{fix}")
    return make_dimension("{name}").load(None, scenario)

DIMENSION = make_dimension("{name}", scenarios=("a", "b"))
object.__setattr__(DIMENSION, "load", load)

def test_{name}(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
"""


def _suite(folder: Path, error: str, *args: str, policy: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conftest.py").write_text(FAKE_CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    culprit = "stereotype/dataset/stereotype_bias_data.jsonl" + (":3" if error == "CorruptDataError" else "")
    problem = "not valid JSON (Expecting value)" if error == "CorruptDataError" else "no such file"
    (folder / "test_stereotype.py").write_text(
        MISSING_TEST.format(error=error, culprit=culprit, problem=problem, fix="restore the file", name="stereotype")
    )
    if policy is not None:
        path = folder / "policy.toml"
        path.write_text((ROOT / "thresholds.toml").read_text().replace(*policy))
        args = (*args, "--trust-thresholds", str(path))
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TRUSTGATE_CACHE": str(folder / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--model", "gptq4", "--trust-report", "report", "-rs", *args],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _summary(folder: Path) -> dict:
    return json.loads((folder / "report" / "summary.json").read_text())


def test_a_check_skipped_for_missing_data_fails_the_run_and_is_listed(tmp_path):
    run = _suite(tmp_path, "MissingDataError")
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "1 skipped" in output and "failed" not in output.split("=")[-2]  # nothing failed, yet the run is red
    reason = "stereotype/dataset/stereotype_bias_data.jsonl: no such file; restore the file"
    assert f"NOT GATED stereotype/b [gptq4]: {reason}" in output
    assert "--trust-allow-ungated" in output
    assert _summary(tmp_path)["not_gated"] == [
        {"check": "stereotype/b", "variant": "gptq4", "reason": reason, "required": True}
    ]


def test_every_check_skipped_is_a_red_run(tmp_path):
    run = _suite(tmp_path, "MissingDataError", "-k", "b")
    assert run.returncode == 1, run.stdout
    assert "1 skipped" in run.stdout and "NOT GATED stereotype/b" in run.stdout


def test_ungated_checks_pass_only_where_the_user_allowed_them(tmp_path):
    by_option = _suite(tmp_path / "option", "MissingDataError", "--trust-allow-ungated")
    assert by_option.returncode == 0, by_option.stdout
    assert "not gated (allowed) stereotype/b [gptq4]" in by_option.stdout
    by_policy = _suite(
        tmp_path / "policy",
        "MissingDataError",
        policy=("[dimensions.stereotype]\n", "[dimensions.stereotype]\nrequired = false\n"),
    )
    assert by_policy.returncode == 0, by_policy.stdout
    assert _summary(tmp_path / "policy")["not_gated"][0]["required"] is False


def test_corrupt_data_is_an_error_naming_the_file_and_line_never_a_skip(tmp_path):
    run = _suite(tmp_path, "CorruptDataError", "--trust-allow-ungated")  # the opt-in covers missing data only
    assert run.returncode == 1, run.stdout
    assert "skipped" not in run.stdout
    assert "stereotype/dataset/stereotype_bias_data.jsonl:3: not valid JSON (Expecting value); restore the file" in (
        run.stdout
    )


@pytest.mark.parametrize(
    ("name", "content", "reader", "culprit"),
    [
        ("a.jsonl", '{"ok": 1}\n{"ok": 2}\nnot json\n', "read_jsonl", "a.jsonl:3: not valid JSON"),
        ("a.json", '{"ok": [1,\n 2,\n', "read_json", "a.json:3: not valid JSON"),
        ("a.csv", b"\xff\xfe garbage", "read_csv", "a.csv: not UTF-8 text"),
        ("a.npy", b"not an array", "read_npy", "a.npy: not a readable .npy array"),
    ],
)
def test_every_reader_names_the_corrupt_file_and_line(tmp_path, name, content, reader, culprit):
    from trustgate.data import sources
    from trustgate.util.errors import CorruptDataError, MissingDataError

    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CorruptDataError) as raised:
        result = getattr(sources, reader)(path)
        list(result) if reader == "read_jsonl" else result
    assert culprit in str(raised.value) and not isinstance(raised.value, MissingDataError)


def test_a_corrupt_decodingtrust_file_fails_the_run_with_its_line(run_gate, tiny_llama_dir: Path, tmp_path: Path):
    """`--trust-data` with a stereotype file that is not JSON: the tests error, none skips, exit 1."""
    from tests.conftest import SHARED_DATA

    dataset = tmp_path / "decodingtrust" / "stereotype" / "dataset"
    dataset.mkdir(parents=True)
    for name in ("system_prompts.csv", "user_prompts.csv"):
        (dataset / name).write_bytes((SHARED_DATA / "stereotype" / "dataset" / name).read_bytes())
    lines = (SHARED_DATA / "stereotype" / "dataset" / "stereotype_bias_data.jsonl").read_text().splitlines()[:4]
    (dataset / "stereotype_bias_data.jsonl").write_text("\n".join([*lines[:2], lines[2][:40], lines[3]]) + "\n")
    run = run_gate(
        "--trust-base-model", str(tiny_llama_dir), "--model", "dense", "-k", "stereotype", "--trust-limit", "2",
        "--trust-data", str(tmp_path / "decodingtrust"),
    )  # fmt: skip
    assert run.returncode == 1, run.output
    assert "stereotype_bias_data.jsonl:3: not valid JSON" in run.output
    assert "skipped" not in run.output and "4 failed" in run.output


@pytest.mark.parametrize(
    ("name", "content", "reader", "field", "culprit"),
    [
        ("a.jsonl", '{"prompt": {"text": "x"}}\n{"prompt": {"txt": "y"}}\n', "read_jsonl", "text",
         "a.jsonl:2: has no 'text' field (it has 'txt')"),
        ("a.csv", "type,system_prompt\nbenign,hi\n", "read_csv", "user_prompt", "a.csv:2: has no 'user_prompt' field"),
        ("a.json", '{"rows": {"a": 1}}', "read_json", "b", "a.json: has no 'b' field (it has 'a')"),
    ],
)  # fmt: skip
def test_a_missing_field_names_the_file_line_and_field_never_a_bare_key_error(
    tmp_path, name, content, reader, field, culprit
):
    """Defect 6: a CSV without an expected column, or a JSONL line without a key, was a raw KeyError."""
    from trustgate.data import sources
    from trustgate.util.errors import CorruptDataError

    path = tmp_path / name
    path.write_text(content)
    rows = list(getattr(sources, reader)(path))
    with pytest.raises(CorruptDataError) as raised:
        if reader == "read_jsonl":
            [row["prompt"][field] for row in rows]
        elif reader == "read_csv":
            [row[field] for row in rows]
        else:
            sources.read_json(path)["rows"][field]
    assert culprit in str(raised.value) and "DecodingTrust's schema" in str(raised.value)


def test_the_stereotype_loader_names_a_line_without_its_key(tmp_path):
    from tests.conftest import SHARED_DATA
    from trustgate.data import TrustData
    from trustgate.dimensions import all_dimensions
    from trustgate.util.errors import CorruptDataError

    dataset = tmp_path / "stereotype" / "dataset"
    dataset.mkdir(parents=True)
    for name in ("system_prompts.csv", "user_prompts.csv"):
        (dataset / name).write_bytes((SHARED_DATA / "stereotype" / "dataset" / name).read_bytes())
    lines = (SHARED_DATA / "stereotype" / "dataset" / "stereotype_bias_data.jsonl").read_text().splitlines()[:3]
    lines[1] = lines[1].replace('"sys_prompt_type_tag"', '"sys_prompt_tag"')
    (dataset / "stereotype_bias_data.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptDataError) as raised:
        all_dimensions()["stereotype"].load(TrustData("local", tmp_path), "benign")
    assert "stereotype_bias_data.jsonl:2: has no 'sys_prompt_type_tag' field" in str(raised.value)


def test_a_fifo_named_as_a_data_file_is_refused_not_read(tmp_path):
    """Defect 18: reading a FIFO blocked forever with no output."""
    import os

    from trustgate.data import sources
    from trustgate.util.errors import CorruptDataError

    fifo = tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    for reader in ("read_jsonl", "read_csv", "read_json", "read_npy"):
        with pytest.raises(CorruptDataError, match="is not a regular file"):
            list(getattr(sources, reader)(fifo))
