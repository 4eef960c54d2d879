"""Progress that stays readable in a CI log: tqdm on a terminal, periodic lines elsewhere.

Lines go to the original stderr so pytest's capture does not hide long work.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

LINE_INTERVAL_SECONDS = 30.0


def _stream():
    return sys.__stderr__ or sys.stderr


def interactive() -> bool:
    stream = _stream()
    return bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """Counts units of work; draws a bar on a terminal, one line every 30 s otherwise."""

    def __init__(self, description: str, total: int, unit: str = "it") -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0
        self.started = time.perf_counter()
        self._last_line = self.started
        self._bar = None
        if interactive():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit=unit, file=_stream(), leave=False)

    def update(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
            return
        now = time.perf_counter()
        if now - self._last_line >= LINE_INTERVAL_SECONDS:
            self._last_line = now
            self._line()

    def _line(self) -> None:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed else 0.0
        print(
            f"[trustgate] {self.description}: {self.done}/{self.total} {self.unit} "
            f"({rate:.1f} {self.unit}/s, {elapsed:.0f}s)",
            file=_stream(),
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.done and time.perf_counter() - self.started >= LINE_INTERVAL_SECONDS:
            self._line()


@contextmanager
def heartbeat(description: str) -> Iterator[None]:
    """For work without countable steps (a subprocess): a line when it starts and every 30 s."""
    stream = _stream()
    started = time.perf_counter()
    stop = threading.Event()
    print(f"[trustgate] {description} ...", file=stream, flush=True)

    def beat() -> None:
        while not stop.wait(LINE_INTERVAL_SECONDS):
            print(f"[trustgate] {description}: {time.perf_counter() - started:.0f}s", file=stream, flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        print(f"[trustgate] {description}: done in {time.perf_counter() - started:.0f}s", file=stream, flush=True)


def say(message: str) -> None:
    """One progress line (long work that is not a loop: a search's steps)."""
    print(f"[trustgate] {message}", file=_stream(), flush=True)
