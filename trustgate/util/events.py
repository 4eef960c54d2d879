"""The event log: one JSON line per model load, generation or engine stream, to
$TRUSTGATE_EVENTS when set: how the benchmarks and the xdist test see what each worker did."""

from __future__ import annotations

import json
import os
from typing import Any


def record_event(kind: str, **fields: Any) -> None:
    """Append one event (`kind` and `fields`) to $TRUSTGATE_EVENTS; nothing when it is unset."""
    path = os.environ.get("TRUSTGATE_EVENTS")
    if not path:
        return
    line = json.dumps({"event": kind, "pid": os.getpid(), "worker": os.environ.get("PYTEST_XDIST_WORKER"), **fields})
    with open(path, "a", encoding="utf-8") as handle:  # one short append per line: atomic on POSIX
        handle.write(line + "\n")
