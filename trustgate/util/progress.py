"""Progress a person can see: a bar on a terminal, a line at least every 30 s in a CI log.

pytest captures file descriptor 2 while tests run, so writing to `sys.__stderr__` lands in
the capture, not on the screen. The plugin calls `keep_terminal()` when pytest imports it,
before capturing starts, and progress goes to that copy of the original stderr. A timer, not
the work, writes the CI lines: a batch that takes minutes still shows a line every 30 s.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

LINE_INTERVAL_SECONDS = 30.0
STAGE_PREFIX = "[stage] "  # a worker subprocess announces its stages with this on stdout

_terminal: IO[str] | None = None


def keep_terminal() -> None:
    """Keep a copy of this process's stderr as it is now (before pytest captures it)."""
    global _terminal
    if _terminal is not None:
        return
    try:
        _terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace", closefd=True)
    except OSError:  # no stderr at all (a daemon): progress falls back to sys.stderr
        _terminal = None
        return
    atexit.register(_terminal.close)


def _stream() -> IO[str]:
    return _terminal or sys.__stderr__ or sys.stderr


def interactive() -> bool:
    return bool(getattr(_stream(), "isatty", lambda: False)())


def _duration(elapsed: float) -> str:
    seconds = round(elapsed)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def progress_line(description: str, done: int, total: int, unit: str, elapsed: float) -> str:
    """`generate gptq4 stereotype/benign: 120/480 prompts, 1.52 prompts/s, 3m57s left (1m19s)`."""
    rate = done / elapsed if elapsed > 0 else 0.0
    left = f"{_duration((total - done) / rate)} left" if rate > 0 else "time left not known yet"
    return f"[trustgate] {description}: {done}/{total} {unit}, {rate:.2f} {unit}/s, {left} ({_duration(elapsed)})"


class _Ticker:
    """Calls `beat` every `interval` seconds on a daemon thread until stopped."""

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.wait(interval):
                beat()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Progress:
    """Counts units of work; draws a bar on a terminal, one line every 30 s otherwise."""

    def __init__(self, description: str, total: int, unit: str = "it", interval: float | None = None) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0
        self.started = time.perf_counter()
        self._bar = None
        self._ticker: _Ticker | None = None
        if interactive():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit=unit, file=_stream(), leave=False)
        else:
            self._line()  # the CI log says at once what started and how much there is
            self._ticker = _Ticker(self._line, interval or LINE_INTERVAL_SECONDS)

    def update(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)

    def _line(self) -> None:
        line = progress_line(self.description, self.done, self.total, self.unit, time.perf_counter() - self.started)
        print(line, file=_stream(), flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._ticker is not None:
            self._ticker.stop()
            self._line()


@contextmanager
def heartbeat(
    description: str, stage: Callable[[], str] | None = None, interval: float | None = None
) -> Iterator[None]:
    """For work without countable steps (a subprocess): a line when it starts and every 30 s,
    with `stage()` (e.g. the last stage a compression worker logged) when given."""
    stream = _stream()
    started = time.perf_counter()
    print(f"[trustgate] {description} ...", file=stream, flush=True)

    def beat() -> None:
        now = stage() if stage is not None else ""
        elapsed = _duration(time.perf_counter() - started)
        print(f"[trustgate] {description}: {now + ', ' if now else ''}{elapsed}", file=stream, flush=True)

    ticker = _Ticker(beat, interval or LINE_INTERVAL_SECONDS)
    try:
        yield
    finally:
        ticker.stop()
        print(f"[trustgate] {description}: done in {_duration(time.perf_counter() - started)}", file=stream, flush=True)


def say(message: str) -> None:
    """One progress line (long work that is not a loop: a search's steps)."""
    print(f"[trustgate] {message}", file=_stream(), flush=True)
