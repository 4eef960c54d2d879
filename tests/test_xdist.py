"""Scale-out: xdist workers share checkpoints and generations, and each gets its own GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from trustgate.models import worker_gpu

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("worker", "gpus", "device"),
    [
        (None, 4, "cuda"),  # no xdist: all GPUs, device_map="auto"
        ("gw0", 1, "cuda"),
        ("gw0", 2, "cuda:0"),
        ("gw1", 2, "cuda:1"),
        ("gw5", 4, "cuda:1"),  # more workers than GPUs: round robin
        ("master", 2, "cuda"),
    ],
)
def test_each_xdist_worker_gets_its_own_gpu(worker, gpus, device):
    assert worker_gpu(worker, gpus) == device


@pytest.mark.slow
def test_two_workers_two_variants_one_report(tmp_path: Path, tiny_llama_dir: Path):
    events = tmp_path / "events.jsonl"
    report = tmp_path / "report"
    command = [sys.executable, "-m", "pytest", "trust_tests", "-p", "no:cacheprovider", "-q", "-n", "2"]
    command += ["--model", "gptq4+cal16", "--model", "magnitude-2:4", "-k", "stereotype", "--trust-limit", "4"]
    command += [
        "--trust-base-model",
        str(tiny_llama_dir),
        "--trust-cache-dir",
        str(tmp_path / "cache"),
        "--trust-report",
        str(report),
    ]
    command += ["--trust-calibration", "fallback", "--trust-batch-size", "8"]
    env = {**os.environ, "TRUSTGATE_EVENTS": str(events), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1), output  # 1: a random model may fail its gate; never an error
    summary = json.loads((report / "summary.json").read_text())
    assert "comparisons" in summary, summary.keys()
    assert len(summary["comparisons"]) == 8, output  # 2 variants x (3 scenarios + overall), merged

    lines = [json.loads(line) for line in events.read_text().splitlines()]
    loads = Counter((e["worker"], e["fingerprint"]) for e in lines if e["event"] == "load")
    assert loads and max(loads.values()) == 1  # each model loaded at most once per worker
    assert len({e["worker"] for e in lines}) == 2  # both workers took part
    generated = Counter()
    variants_by_worker: dict[str, set[str]] = {}
    for e in lines:
        if e["event"] == "generate":
            generated[(e["model"], e["scenario"])] += e.get("generated", 0)
            if e["model"] != "dense":
                variants_by_worker.setdefault(e["worker"], set()).add(e["model"])
    assert sorted(map(sorted, variants_by_worker.values())) == [["gptq4+cal16"], ["magnitude-2:4"]]  # one each
    # 3 models x 3 scenarios x 4 statements, each generated once: the three scenarios together
    # (Evaluator.prepare), so per model one generate event generated anything
    made = {key: count for key, count in generated.items() if count}
    assert made == {(m, "stereotype/benign+untargeted+targeted"): 12 for m in ("dense", "gptq4+cal16", "magnitude-2:4")}
    checkpoints = sorted(p.name for p in (tmp_path / "cache" / "checkpoints").iterdir() if p.is_dir())
    assert len(checkpoints) == 2 and not any(".partial-" in name for name in checkpoints), checkpoints
