"""The gate through a real vLLM server (from .venv-vllm) on the embedded model, end to end:
`pytest --trust-engine vllm --model dense -k "stereotype and benign" --trust-limit 8`, then the same with the
transformers engine; records and verdicts have the same shape and most greedy texts agree.

Skipped only where `.venv-vllm` is absent (`bash scripts/setup.sh --with-vllm` makes it; CI does).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
COMMAND = ("--model", "dense", "-k", "stereotype and benign", "--trust-limit", "8")
MIN_AGREEMENT = 0.5  # kernels differ (vLLM's fused CPU ops vs PyTorch's), so not every text is identical

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PYTHON.is_file(), reason=f"{VLLM_PYTHON} is absent: bash scripts/setup.sh --with-vllm"),
]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _shape(value: object) -> object:
    """Keys and types, not values."""
    if isinstance(value, dict):
        return {key: _shape(v) for key, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_the_gate_runs_through_a_vllm_server_and_agrees_with_transformers(
    run_gate, tmp_path: Path, cache_root: Path, embedded_model_dir: Path, monkeypatch, record_property
) -> None:
    # A generation cache of its own (the converted model linked in), so the server really runs.
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "base-models").symlink_to(embedded_model_dir.parent, target_is_directory=True)
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("TRUSTGATE_EVENTS", str(events))

    served = run_gate("--trust-engine", "vllm", *COMMAND, "--trust-cache-dir", str(cache))
    assert served.returncode == 0, served.output[-3000:]
    vllm_report = tmp_path / "vllm-report"
    shutil.copytree(served.report_dir, vllm_report)
    generated = [e for e in _lines(events) if e["event"] == "generate"]
    assert [e["model"] for e in _lines(events) if e["event"] == "load"] == ["dense"]
    assert generated and generated[0].get("generated", 0) > 0  # from the server, not the cache
    (log,) = (vllm_report / "logs").glob("vllm-dense-*.log")
    assert "--served-model-name trustgate-model --dtype float32" in log.read_text()

    local = run_gate(*COMMAND, "--trust-cache-dir", str(cache))
    assert local.returncode == 0, local.output[-3000:]

    records = "records/dense/stereotype/benign.jsonl"
    (vllm_header, *vllm_items), (local_header, *local_items) = (
        _lines(vllm_report / records),
        _lines(local.report_dir / records),
    )
    assert vllm_header["header"]["backend"].startswith("vllm-") and vllm_header["header"]["backend"].endswith("float32")
    assert local_header["header"]["backend"].startswith("transformers-")
    assert _shape(vllm_header) == _shape(local_header) and _shape(vllm_items) == _shape(local_items)
    assert [r["item"]["id"] for r in vllm_items] == [r["item"]["id"] for r in local_items]
    vllm_verdicts = json.loads((vllm_report / "summary.json").read_text())["comparisons"]
    local_verdicts = json.loads((local.report_dir / "summary.json").read_text())["comparisons"]
    assert _shape(vllm_verdicts) == _shape(local_verdicts) and len(vllm_verdicts) == 1

    same = sum(a["responses"] == b["responses"] for a, b in zip(vllm_items, local_items, strict=True))
    share = same / len(vllm_items)
    record_property("vllm_transformers_agreement", f"{same}/{len(vllm_items)}")
    print(f"greedy texts identical to the transformers engine: {same}/{len(vllm_items)} ({share:.0%})")
    assert share >= MIN_AGREEMENT, (same, len(vllm_items))
