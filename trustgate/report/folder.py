"""One run at a time writes a report folder, and a folder holds one run's reports.

Two runs sharing `trustgate-report/` used to interleave: the last writer's summary won (it said
PASS while the other run FAILED) and records of earlier runs piled up beside the new ones. A run
now claims the folder with a lock for its whole session (a second run is refused at start-up),
and moves the previous run's reports to `previous-run/` (replacing the one before): nothing of
the last run is lost, and nothing of it is mixed into this one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from trustgate.util.errors import TrustgateError

LOCK = ".trustgate-run.lock"
PREVIOUS = "previous-run"
# What a run writes into the folder (records and logs of the evaluator, the remedy search, the summary).
RUN_OUTPUTS = ("records", "logs", "remedy", "summary.json", "summary.md", "radar.png")


def claim_report_folder(folder: Path) -> Callable[[], None]:
    """Lock `folder` for this run and set the previous run's reports aside; returns the release."""
    lock = FileLock(str(folder / LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TrustgateError(
            f"--trust-report {folder}",
            "another trustgate run is writing reports into this folder",
            "give each concurrent run its own --trust-report, or wait for the other run to end",
        ) from None
    previous = [folder / name for name in RUN_OUTPUTS if (folder / name).exists()]
    if previous:
        aside = folder / PREVIOUS
        shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir()
        for path in previous:
            path.rename(aside / path.name)
    return lock.release
