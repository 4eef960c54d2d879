"""The sqlite generation cache: round trip, damaged rows, unreadable files, a second reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustgate.engine.cache import GenerationCache
from trustgate.util.errors import TrustgateError


def test_round_trip_and_second_connection(tmp_path: Path):
    cache = GenerationCache(tmp_path / "g.sqlite")
    key = GenerationCache.key("f" * 64, "prompt", {"max_new_tokens": 8})
    cache.put_many([(key, ["one", "two \u00e9"])])
    other = GenerationCache(tmp_path / "g.sqlite")  # another xdist worker, same file (WAL)
    assert other.get_many([key, "missing"]) == {key: ["one", "two \u00e9"]}
    assert len(other) == 1


def test_key_depends_on_every_part():
    base = GenerationCache.key("f" * 64, "prompt", {"max_new_tokens": 8})
    assert base != GenerationCache.key("e" * 64, "prompt", {"max_new_tokens": 8})
    assert base != GenerationCache.key("f" * 64, "prompt ", {"max_new_tokens": 8})
    assert base != GenerationCache.key("f" * 64, "prompt", {"max_new_tokens": 9})


def test_damaged_row_is_regenerated_not_trusted(tmp_path: Path):
    cache = GenerationCache(tmp_path / "g.sqlite")
    cache._db.execute("INSERT INTO generations VALUES ('k', '[not json')")
    cache._db.commit()
    assert cache.get_many(["k"]) == {}


def test_a_corrupt_cache_is_set_aside_and_rebuilt_with_a_warning(tmp_path: Path, monkeypatch):
    """Defect 8: a corrupt generations.sqlite was a traceback in every test; it is a cache."""
    import io

    from trustgate.util import progress

    log = io.StringIO()
    monkeypatch.setattr(progress, "_terminal", log)  # where progress lines go (the terminal pytest does not capture)
    path = tmp_path / "g.sqlite"
    damaged = b"this is not a database" * 100
    path.write_bytes(damaged)
    with pytest.warns(RuntimeWarning, match="the generation cache was corrupt"):
        cache = GenerationCache(path)
    cache.put_many([("k", ["v"])])
    assert cache.get_many(["k"]) == {"k": ["v"]}
    kept = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged  # nothing lost: the damaged file is kept
    assert "set aside as g.sqlite.corrupt-" in log.getvalue()


def test_a_read_only_cache_says_so_and_never_advises_deleting_it(tmp_path: Path, monkeypatch):
    """Defect 2: a read-only cache was called unreadable, with the advice to delete it."""
    import sqlite3

    path = tmp_path / "g.sqlite"
    GenerationCache(path).put_many([("k", ["v"])])

    def read_only(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with pytest.raises(TrustgateError) as refused:
        GenerationCache(path)
    assert "cannot be written" in str(refused.value) and "--trust-cache-dir" in str(refused.value)
    assert "delete" not in str(refused.value)
    assert path.exists() and not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]


def _open_and_write(path: str, worker: int, start, done) -> None:
    start.wait()
    cache = GenerationCache(Path(path))
    cache.put_many([(f"key-{worker}-{n}", [str(n)]) for n in range(20)])
    done.put(worker)


def test_processes_opening_a_new_cache_at_once_all_succeed(tmp_path: Path):
    # xdist workers start together on a fresh cache; setting up WAL used to fail with
    # "database is locked" in all but one of them.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    start, done = context.Event(), context.Queue()
    path = str(tmp_path / "g.sqlite")
    workers = [context.Process(target=_open_and_write, args=(path, n, start, done)) for n in range(8)]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0] * 8
    assert len(GenerationCache(Path(path))) == 8 * 20
