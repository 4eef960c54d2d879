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


def test_corrupt_or_half_written_entries_are_rebuilt(tmp_path: Path) -> None:
    folder, _ = build_once(tmp_path / "entry", lambda s: (s / "w.bin").write_bytes(b"1234") and {})
    (folder / "w.bin").write_bytes(b"12")  # truncated after publication
    assert not entry_is_complete(folder)
    _, rebuilt = build_once(folder, lambda s: (s / "w.bin").write_bytes(b"1234") and {})
    assert rebuilt and (folder / "w.bin").read_bytes() == b"1234"

    (folder / COMPLETE_MARKER).unlink()  # a crash before the marker: never trusted
    _, rebuilt = build_once(folder, lambda s: (s / "w.bin").write_bytes(b"5678") and {})
    assert rebuilt and (folder / "w.bin").read_bytes() == b"5678"

    (folder / COMPLETE_MARKER).write_text("{not json")
    assert not entry_is_complete(folder)


def test_digest_is_order_stable_for_mappings() -> None:
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
