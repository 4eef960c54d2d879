"""Progress a person can see: lines reach the real stderr while pytest captures, on a timer."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from trustgate.util import progress

SLOW_TEST = """
import time

from trustgate.util.progress import Progress


def test_a_long_generation():
    bar = Progress("generate dense stereotype/benign", total=40, unit="prompts", interval=0.3)
    time.sleep(1.0)  # one long batch: no update, yet the log must show the run is alive
    bar.update(20)
    time.sleep(0.7)
    bar.close()
"""


def test_progress_lines_reach_a_ci_log_while_pytest_captures(tmp_path: Path):
    """Defect 3: with pytest's default capture (file descriptors) and no terminal, the lines were
    captured with the test's output and a passing test showed nothing."""
    (tmp_path / "test_slow.py").write_text(SLOW_TEST)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_slow.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if "generate dense stereotype/benign" in line]
    assert len(lines) >= 4, done.stderr  # at start, on the timer during the long batch, after it, at the end
    assert "0/40 prompts" in lines[1] and "time left not known yet" in lines[1]  # the timer, before any batch ended
    assert "20/40 prompts" in lines[-1] and "prompts/s" in lines[-1] and " left " in lines[-1]


def test_a_line_names_done_rate_and_time_left():
    line = progress.progress_line("generate gptq4 stereotype/benign", 120, 480, "prompts", 80.0)
    assert line == "[trustgate] generate gptq4 stereotype/benign: 120/480 prompts, 1.50 prompts/s, 4m00s left (1m20s)"


def test_the_heartbeat_shows_the_stage_a_worker_announced(tmp_path: Path, monkeypatch):
    from compressors import worker_stage

    log = tmp_path / "compression.log"
    log.write_text(f"{progress.STAGE_PREFIX}loading the base model\n{progress.STAGE_PREFIX}calibrating (gptq)\n"
                   "2026-12-07 | GPTQ | compressing model.layers.3.mlp.down_proj\n")  # fmt: skip
    assert worker_stage(log) == "calibrating (gptq) (log: 2026-12-07 | GPTQ | compressing model.layers.3.mlp.down_proj)"
    stream = io.StringIO()
    monkeypatch.setattr(progress, "_terminal", stream)
    with progress.heartbeat("compressing gptq4", stage=lambda: worker_stage(log), interval=0.2):
        import time

        time.sleep(0.5)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[trustgate] compressing gptq4 ..."
    assert any(line.startswith("[trustgate] compressing gptq4: calibrating (gptq)") for line in lines[1:-1])
    assert lines[-1].startswith("[trustgate] compressing gptq4: done in")


def test_the_projects_own_test_run_shows_progress_in_a_ci_log(tmp_path: Path):
    """.ci/run's `pytest tests`: tests that run the gate in a subprocess are silent for minutes."""
    (tmp_path / "conftest.py").write_text(
        "import trustgate.util.progress as progress\n\nprogress.LINE_INTERVAL_SECONDS = 0.3\n"
        'pytest_plugins = ["tests.ci_progress"]\n'
    )
    (tmp_path / "test_slow.py").write_text(
        "import time\n\nimport pytest\n\n\n@pytest.mark.parametrize('n', range(3))\n"
        "def test_slow(n):\n    time.sleep(0.5)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_slow.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("[trustgate] pytest tests:")]
    assert len(lines) >= 4, done.stderr  # the start, the timer during the 1.5 s, the end
    assert lines[0].startswith("[trustgate] pytest tests: 0/3 tests") and "3/3 tests" in lines[-1]
    assert any(" left " in line for line in lines[1:])
