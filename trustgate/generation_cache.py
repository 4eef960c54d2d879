"""Generations keyed by (model weights fingerprint, rendered prompt, decoding settings).

SQLite in WAL mode: several xdist workers can read and append at once, every finished batch
is committed, so an interrupted run resumes where it stopped and a re-score costs no model time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from filelock import FileLock

from trustgate.errors import TrustgateError
from trustgate.storage import digest


class GenerationCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Switching to WAL and creating the table take an exclusive lock that SQLite's busy
        # timeout does not always wait for, so workers starting together would see
        # "database is locked"; one process at a time sets the file up.
        try:
            with FileLock(str(path) + ".init.lock", timeout=120):
                self._db = sqlite3.connect(path, timeout=60, check_same_thread=False)
                if self._db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, responses TEXT NOT NULL)"
                )
                self._db.commit()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TrustgateError(
                    str(path),
                    f"the generation cache stayed locked for 60 s ({exc})",
                    "stop any other trustgate run that uses this cache, then run again",
                ) from exc
            raise TrustgateError(
                str(path),
                f"the generation cache is unreadable ({exc})",
                "delete the file; it is rebuilt on the next run",
            ) from exc

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
