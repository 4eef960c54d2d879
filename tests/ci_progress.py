"""A pytest plugin for this project's own CI log: `pytest tests` runs about 10 minutes, and a
test that runs the gate in a subprocess is silent for minutes; without a terminal (CI), a line
at least every 30 s says how many tests are done, how fast, and how long is left."""

from __future__ import annotations

import pytest

from trustgate.util.progress import Progress, interactive


class SessionProgress:
    """Counts finished tests of this session on a `Progress` (its timer writes the lines)."""

    def __init__(self) -> None:
        self.progress: Progress | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.items and not session.config.option.collectonly:
            self.progress = Progress("pytest tests", total=len(session.items), unit="tests")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" and self.progress is not None:
            self.progress.update(1)

    def pytest_sessionfinish(self) -> None:
        if self.progress is not None:
            self.progress.close()


def pytest_configure(config: pytest.Config) -> None:
    # A terminal shows pytest's own progress; an xdist worker's count is not the session's.
    if not interactive() and not hasattr(config, "workerinput"):
        config.pluginmanager.register(SessionProgress(), "trustgate-tests-progress")
