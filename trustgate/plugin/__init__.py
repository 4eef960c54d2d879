"""The pytest plugin: options, settings at configure time, parametrization, the summary.

Installed as the pytest11 entry point `trustgate` (`-p no:trustgate` turns it off), so it loads
in every pytest run of the environment (`pytest tests`, `pytest --help`, another project's
tests). It therefore imports nothing heavy at import time and builds the gate's settings
(thresholds.toml, variants, data) only in a run that gates: one that collects the trust tests
or names a trustgate option. Anything else pays for an option group and the dimension markers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from trustgate.dimensions.registry import OVERALL, REGISTRY
from trustgate.plugin.options import add_options, given, refuse_old_spellings
from trustgate.plugin.repository import TRUST_TESTS
from trustgate.plugin.rootdir import adopt_repository_ini
from trustgate.util.progress import keep_terminal

# pytest imports this entry point before it starts capturing: keep the real stderr for progress
# lines, which a CI log and a terminal must show while a test runs (util.progress).
keep_terminal()

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler import Scheduling

    from trustgate.plugin.settings import Settings
    from trustgate.report.summary import RunSummary

SETTINGS = pytest.StashKey["Settings"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    adopt_repository_ini(early_config, args)
    refuse_old_spellings(parser, args)


def _gates(config: pytest.Config) -> bool:
    """Does this run gate a model? It does when it collects the trust tests (by default, or a
    path inside or above trust_tests/) or when the user set a trustgate option."""
    if config.option.help or config.option.version:
        return False
    if given(config):
        return True
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::", 1)[0]).resolve()
        if path == TRUST_TESTS or TRUST_TESTS in path.parents or path in TRUST_TESTS.parents:
            return True
    return False


def settings_of(config: pytest.Config) -> Settings:
    """The run's settings, built at configure time in a gating run and on first use otherwise."""
    if SETTINGS not in config.stash:
        from trustgate.plugin.settings import build_settings
        from trustgate.util.errors import TrustgateError

        try:
            config.stash[SETTINGS] = build_settings(config.option)
        except TrustgateError as exc:
            raise pytest.UsageError(str(exc)) from None
    return config.stash[SETTINGS]


def check_alluredir(config: pytest.Config) -> None:
    """allure-pytest creates --alluredir in its own pytest_configure and crashes (exit 3) on a
    file there; refuse it first, as the usage error it is."""
    alluredir = getattr(config.option, "allure_report_dir", None)
    if alluredir and Path(alluredir).expanduser().exists() and not Path(alluredir).expanduser().is_dir():
        raise pytest.UsageError(f"--alluredir {alluredir}: is a file, not a folder; pass a folder for Allure's results")


@pytest.hookimpl(tryfirst=True)  # before allure-pytest's pytest_configure (check_alluredir)
def pytest_configure(config: pytest.Config) -> None:
    check_alluredir(config)
    for entry in REGISTRY:
        config.addinivalue_line("markers", f"{entry.name}: {entry.summary}")
    if _gates(config):
        settings = settings_of(config)
        # The xdist controller (or a plain run) owns the folder; --collect-only writes no report.
        if not hasattr(config, "workerinput") and not config.option.collectonly:
            from trustgate.report.folder import claim_report_folder
            from trustgate.util.errors import TrustgateError

            try:
                config.add_cleanup(claim_report_folder(settings.evaluation.report_dir))
            except TrustgateError as exc:
                raise pytest.UsageError(str(exc)) from None
        config.pluginmanager.register(TrustReporter(config), "trustgate-reporter")


def pytest_report_header(config: pytest.Config) -> list[str]:
    from trustgate.gate.plan import plan_lines

    if SETTINGS not in config.stash:
        return []
    settings = config.stash[SETTINGS]
    return [
        f"trustgate: base {settings.base_model}; variants {', '.join(v.name for v in settings.variants)}",
        f"trustgate: data {settings.evaluation.data.describe()}; profile {settings.evaluation.profile_name}; "
        f"thresholds {settings.thresholds_path}",
        f"trustgate: engine {settings.evaluation.engine.describe()}",
        settings.thresholds.family_line(),
        *plan_lines(settings),
    ]


def variant_ids(settings: Settings) -> list[str]:
    """Each variant, then each method given with several seeds, judged as one group."""
    from trustgate.gate.seeds import seed_groups

    return [v.name for v in settings.variants] + list(seed_groups(settings.variants))


def work_units(settings: Settings) -> dict[str, str]:
    """Variant parameter id -> the xdist work unit it runs in (a seed group keeps its members)."""
    from trustgate.gate.seeds import group_of, seed_groups

    groups = seed_groups(settings.variants)
    return {name: group_of(name, groups) or name for name in variant_ids(settings)}


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """`-n N` with xdist's default `--dist load`: schedule by model (plugin.scheduling);
    any other `--dist` the user names is left to xdist."""
    if config.getvalue("dist") != "load" or SETTINGS not in config.stash:
        return None
    from trustgate.plugin.scheduling import ModelScheduling  # xdist is imported only when -n is used

    return ModelScheduling(config, log, work_units(config.stash[SETTINGS]))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Trust test modules (those declaring DIMENSION) run per variant and per scenario."""
    dimension = getattr(metafunc.module, "DIMENSION", None)
    if dimension is None:
        return
    settings = settings_of(metafunc.config)
    if "variant" in metafunc.fixturenames:
        names = variant_ids(settings)
        metafunc.parametrize("variant", names, ids=names, scope="session")
    if "scenario" in metafunc.fixturenames:
        scenarios = [*dimension.scenarios, OVERALL]
        metafunc.parametrize("scenario", scenarios, ids=scenarios)


class TrustReporter:
    """Collects comparisons from test reports (on the xdist controller too) and renders them."""

    def __init__(self, config: pytest.Config) -> None:
        from trustgate.report.summary import RunSummary

        self.config = config
        self.summary: RunSummary = RunSummary(
            min_answer_rate=config.stash[SETTINGS].thresholds.gate.min_base_answer_rate
        )
        self.remedy: list[str] = []  # --trust-remedy: its terminal lines

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        from trustgate.gate.compare import Comparison
        from trustgate.report.summary import COMPARISON_PROPERTY, NOT_GATED_PROPERTY

        for name, value in report.user_properties:
            if name == COMPARISON_PROPERTY:
                comparison = Comparison.from_dict(json.loads(value))
                self.summary.add(comparison)
                if self.config.pluginmanager.hasplugin("allure_listener"):
                    from trustgate.report.allure import show_status

                    show_status(self.config, report.nodeid, comparison)
            elif name == NOT_GATED_PROPERTY:
                self.summary.not_gated.append(json.loads(value))

    def blocking_gaps(self) -> list[dict]:
        return [gap for gap in self.summary.not_gated if gap["required"]]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Fail closed: a run that left a required check ungated is not a green gate."""
        if hasattr(self.config, "workerinput"):
            return
        if self.blocking_gaps() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self.write_summary()
        settings = self.config.stash[SETTINGS]
        if settings.remedy is not None and session.exitstatus != pytest.ExitCode.INTERRUPTED:
            from trustgate.plugin.remedy import remedies

            # Advice beside the verdict: the run's exit status stays the gate's.
            self.remedy = remedies(settings, self.summary.comparisons) or ["no gate check ran: nothing to remedy"]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.summary.not_gated:
            terminalreporter.section("trustgate: not gated", red=bool(self.blocking_gaps()))
            for gap in sorted(self.summary.not_gated, key=lambda g: (g["check"], g["variant"])):
                mark = "NOT GATED" if gap["required"] else "not gated (allowed)"
                terminalreporter.write_line(f"{mark} {gap['check']} [{gap['variant']}]: {gap['reason']}")
            if self.blocking_gaps():
                terminalreporter.write_line(
                    f"{len(self.blocking_gaps())} selected checks had no data or were left out by the profile, "
                    "so this run gated nothing there and fails. Provide the data (or run the profile that holds "
                    "the scenario), deselect them (-k), or allow it: `required = false` under "
                    "[dimensions.<name>] in thresholds.toml, or --trust-allow-ungated."
                )
        if self.summary.comparisons:
            terminalreporter.section("trustgate")
            for line in self.summary.markdown().splitlines():
                terminalreporter.write_line(line)
            terminalreporter.write_line("")
            for line in self.summary.table_lines():
                terminalreporter.write_line(line)
            report_dir = self.config.stash[SETTINGS].evaluation.report_dir
            terminalreporter.write_line(f"summary: {report_dir / 'summary.md'}, {report_dir / 'summary.json'}")
        if self.remedy:
            terminalreporter.section("trustgate: remedy")
            for line in self.remedy:
                terminalreporter.write_line(line)

    def write_summary(self) -> None:
        if not (self.summary.comparisons or self.summary.not_gated):
            return
        from trustgate.report.summary import run_context

        settings = self.config.stash[SETTINGS]
        context = run_context(settings)
        radar = self.summary.write(settings.evaluation.report_dir, context)
        alluredir = getattr(self.config.option, "allure_report_dir", None)
        if alluredir:
            from trustgate.report.allure import write_run_results

            write_run_results(Path(alluredir), self.summary.comparisons, context, self.summary.markdown(), radar)
