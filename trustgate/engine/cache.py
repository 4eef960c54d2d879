"""Generations keyed by (model weights fingerprint, rendered prompt, decoding settings, backend).

SQLite in WAL mode: several xdist workers can read and append at once, every finished batch
is committed, so an interrupted run resumes where it stopped and a re-score costs no model time.
"""

from __future__ import annotations

import json
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from filelock import FileLock

from trustgate.engine.base import Decoding, Engine, Prompt
from trustgate.util.errors import TrustgateError
from trustgate.util.progress import Progress, say
from trustgate.util.storage import digest

# What SQLite says of a file that is not (or no longer) a database: the cache is set aside and
# rebuilt. Anything else (locked, read-only, no space) is the user's to fix and loses nothing.
CORRUPT = ("file is not a database", "malformed", "corrupt")
NOT_WRITABLE = ("readonly", "read-only", "unable to open", "permission", "disk i/o error")


class GenerationCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Switching to WAL and creating the table take an exclusive lock that SQLite's busy
        # timeout does not always wait for, so workers starting together would see
        # "database is locked"; one process at a time sets the file up.
        with FileLock(str(path) + ".init.lock", timeout=120):
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if not any(sign in str(exc).lower() for sign in CORRUPT):
                    raise self._error(exc) from None
                aside = self._set_aside(exc)
                try:
                    self._db = self._open()
                except sqlite3.DatabaseError as again:
                    raise self._error(again) from None
                message = f"{path}: the generation cache was corrupt ({exc}); set aside as {aside.name}, rebuilt empty"
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                say(message)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, responses TEXT NOT NULL)")
            db.execute("SELECT COUNT(*) FROM generations").fetchone()
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _set_aside(self, exc: Exception) -> Path:
        """Keep the damaged file (and its WAL) under a dated name: it is a cache, so the run goes on."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                part.rename(Path(str(aside) + suffix))
        return aside

    def _error(self, exc: sqlite3.DatabaseError) -> TrustgateError:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return TrustgateError(
                str(self.path),
                f"the generation cache stayed locked for 60 s ({exc})",
                "stop any other trustgate run that uses this cache, then run again",
            )
        if any(sign in text for sign in NOT_WRITABLE):
            return TrustgateError(
                str(self.path),
                f"the generation cache cannot be written ({exc})",
                "make the file and its folder writable, or pass --trust-cache-dir a folder you can write to",
            )
        return TrustgateError(str(self.path), f"the generation cache cannot be used ({exc})", "see SQLite's message")

    @staticmethod
    def key(fingerprint: str, prompt: str, settings: dict) -> str:
        return digest(fingerprint, prompt, settings)

    def get_many(self, keys: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, responses FROM generations WHERE key IN ({marks})", chunk)
            for key, responses in rows:
                try:
                    found[key] = json.loads(responses)
                except ValueError:
                    continue  # a damaged row is regenerated, not trusted
        return found

    def put_many(self, entries: Iterable[tuple[str, list[str]]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO generations (key, responses) VALUES (?, ?)",
                [(key, json.dumps(responses, ensure_ascii=False)) for key, responses in entries],
            )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def generation_keys(engine: Engine, prompts: Sequence[Prompt], decoding: Decoding) -> list[str]:
    """One key per prompt: the weights fingerprint (never the model's name), the rendered
    prompt, the decoding settings and the engine's backend id (bf16 on a GPU and float32 on a
    CPU, or two engines, generate different text from the same weights)."""
    settings = {**asdict(decoding), "backend": engine.backend}
    return [GenerationCache.key(engine.handle.fingerprint, prompt.text, settings) for prompt in prompts]


def cached_generate(
    engine: Engine,
    prompts: Sequence[Prompt],
    decoding: Decoding,
    cache: GenerationCache,
    description: str,
    chunk: int = 64,
    stats: dict[str, float] | None = None,
    loader: Callable[[], Engine] | None = None,
) -> list[list[str]]:
    """Generations for `prompts`, from the cache where present; misses are committed as they
    finish, so an interrupted run loses only unfinished work: an engine that commits as it goes
    (the transformers engine: each finished stream of prompts sharing a prefix) gets every miss in
    one call, so its decode batches stay full; any other gets them in chunks of `chunk`.
    `loader`, called only when something is missing, readies the engine (loads its weights);
    `stats["generated"]` counts the misses, `stats["seconds"]` the time the engine took for them
    (the event log's per-scenario cost: benchmarks/ci_sizing.py reads it)."""
    keys = generation_keys(engine, prompts, decoding)
    found = cache.get_many(keys)
    # Text order keeps prompts that share a system prompt in one chunk (see trustgate.engine.planning).
    missing = sorted((i for i, key in enumerate(keys) if key not in found), key=lambda i: prompts[i].text)
    if missing:
        if loader is not None:
            engine = loader()
        progress = Progress(description, total=len(missing), unit="prompts")
        try:
            step = len(missing) if getattr(engine, "commits_as_it_goes", False) else chunk
            for start in range(0, len(missing), step):
                indices = missing[start : start + step]

                def commit(done: list[int], texts: list[list[str]], indices: list[int] = indices) -> None:
                    chosen = [indices[i] for i in done]
                    cache.put_many((keys[i], text) for i, text in zip(chosen, texts, strict=True))
                    found.update({keys[i]: text for i, text in zip(chosen, texts, strict=True)})
                    if stats is not None:
                        stats["generated"] = stats.get("generated", 0) + len(chosen)

                started = time.perf_counter()
                texts = engine.generate([prompts[i] for i in indices], decoding, progress=progress, finished=commit)
                if stats is not None:
                    stats["seconds"] = round(stats.get("seconds", 0) + time.perf_counter() - started, 3)
                left = [n for n, i in enumerate(indices) if keys[i] not in found]  # all, unless committed already
                commit(left, [texts[n] for n in left])
        finally:
            progress.close()
    return [found[key] for key in keys]
