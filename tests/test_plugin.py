"""The plugin is cheap where it does not gate, and the install holds only `trustgate`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "numpy", "scipy", "pydantic", "datasets", "llmcompressor")


def _python(code: str, cwd: Path) -> str:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_plugin_loads_nothing_heavy(tmp_path):
    loaded = json.loads(
        _python(
            f"import sys, json, trustgate.plugin; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))",
            tmp_path,
        )
    )
    assert loaded == []


def test_a_run_that_does_not_gate_builds_no_settings(tmp_path):
    (tmp_path / "test_other.py").write_text(
        "import sys\n\ndef test_nothing_heavy():\n    assert 'torch' not in sys.modules\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trustgate:" not in done.stdout  # no report header: nothing was gated


def test_only_trustgate_is_installed(tmp_path):
    found = _python(
        "import importlib.util, json; print(json.dumps({n: importlib.util.find_spec(n) is not None "
        "for n in ('trustgate', 'compressors', 'fixtures')}))",
        tmp_path,
    )
    assert json.loads(found) == {"trustgate": True, "compressors": False, "fixtures": False}
