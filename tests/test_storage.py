"""Cache entries are published atomically, built once across processes, rebuilt when corrupt."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from trustgate.util.storage import COMPLETE_MARKER, build_once, digest, entry_is_complete


def _build_slowly(folder: Path, counter: Path) -> None:
    def build(staging: Path) -> dict:
        with open(counter, "a") as handle:
            handle.write("built\n")
        time.sleep(0.5)
        (staging / "weights.bin").write_bytes(b"x" * 1000)
        return {"note": "slow"}

    build_once(folder, build)


def test_entry_is_published_whole_with_metadata(tmp_path: Path) -> None:
    folder, built = build_once(tmp_path / "entry", lambda s: (s / "a.txt").write_text("hello") and {"k": 1})
    assert built and entry_is_complete(folder)
    assert (folder / "a.txt").read_text() == "hello"
    _, built_again = build_once(folder, lambda s: {"never": "called"})
    assert not built_again
    assert not list(tmp_path.glob("*.partial-*"))


def test_two_processes_build_an_entry_once(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_build_slowly, args=(tmp_path / "entry", counter)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert counter.read_text().count("built") == 1
    assert entry_is_complete(tmp_path / "entry")


def test_corrupt_or_half_written_entries_are_rebuilt(tmp_path: Path, monkeypatch) -> None:
    import io

    from trustgate.util import progress

    log = io.StringIO()
    monkeypatch.setattr(progress, "_terminal", log)
    folder, _ = build_once(tmp_path / "entry", lambda s: (s / "w.bin").write_bytes(b"1234") and {})
    (folder / "w.bin").write_bytes(b"12")  # truncated after publication
    assert not entry_is_complete(folder)
    _, rebuilt = build_once(folder, lambda s: (s / "w.bin").write_bytes(b"1234") and {})
    assert rebuilt and (folder / "w.bin").read_bytes() == b"1234"
    assert f"{folder}: the cached entry is incomplete or was changed since it was written; rebuilding" in log.getvalue()

    (folder / COMPLETE_MARKER).unlink()  # a crash before the marker: never trusted
    _, rebuilt = build_once(folder, lambda s: (s / "w.bin").write_bytes(b"5678") and {})
    assert rebuilt and (folder / "w.bin").read_bytes() == b"5678"

    (folder / COMPLETE_MARKER).write_text("{not json")
    assert not entry_is_complete(folder)


def test_digest_is_order_stable_for_mappings() -> None:
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_a_killed_build_leaves_no_partial_folder_behind_after_the_next_build(tmp_path: Path) -> None:
    """Defect 11: SIGKILL during a compression left a 538 MB `.partial-` folder forever."""
    import subprocess
    import sys

    entry = tmp_path / "gptq4-abc"
    code = (
        "import sys, time, pathlib\n"
        "from trustgate.util.storage import build_once\n"
        "def build(staging):\n"
        "    (staging / 'model.safetensors').write_bytes(b'x' * 1000)\n"
        "    print('building', flush=True); time.sleep(60)\n"
        f"build_once(pathlib.Path({str(entry)!r}), build)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "building"
    child.kill()  # SIGKILL: no finally block runs
    child.wait()
    assert [p.name for p in tmp_path.glob("gptq4-abc.partial-*")]  # what the killed run left
    built, now = build_once(entry, lambda staging: (staging / "w").write_text("ok") and {})
    assert now and (built / "w").read_text() == "ok"
    assert not list(tmp_path.glob("gptq4-abc.partial-*"))


def test_a_child_started_with_die_with_parent_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    """Defect 11: the compression worker kept running on its own after the run was SIGKILLed."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    parent_code = (
        "import subprocess, sys, time\n"
        "from trustgate.util.process import die_with_parent\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], preexec_fn=die_with_parent)\n"
        "print(child.pid, flush=True); time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):  # not our child: nothing to reap
            os.waitpid(child_pid, os.WNOHANG)
        time.sleep(0.1)
    else:
        os.kill(child_pid, signal.SIGKILL)
        raise AssertionError("the child outlived its killed parent")


def test_the_compression_worker_is_started_to_die_with_its_parent(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    import compressors
    from trustgate.util.process import die_with_parent

    seen = {}

    def fake_run(command, **kwargs):
        seen.update(kwargs)
        (tmp_path / "compression-figures.json").write_text("{}")  # what the worker writes
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(compressors.subprocess, "run", fake_run)
    compressors._run_worker({"spec": {}}, tmp_path, "gptq4")
    assert seen["preexec_fn"] is die_with_parent and seen["env"]["PYTHONUNBUFFERED"] == "1"
