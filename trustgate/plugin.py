"""The pytest plugin: options, validation at configure time, parametrization, summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from trustgate.errors import TrustgateError
from trustgate.gate import OVERALL
from trustgate.report import COMPARISON_PROPERTY, RunSummary, run_context
from trustgate.seeds import group_of, seed_groups
from trustgate.settings import DEFAULT_VARIANT, Settings, build_settings

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler import Scheduling

SETTINGS = pytest.StashKey[Settings]()
ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trustgate", "trustgate: gate a compressed model against its dense base")
    group.addoption(
        "--model",
        action="append",
        dest="trust_models",
        metavar="VARIANT",
        help=f"variant to gate (repeatable): gptq3/4/8, awq3/4/8, wanda-2:4, sparsegpt-50, "
        f"magnitude-4:8, ...@seedN+calN, dense, or a checkpoint path/hub id; default {DEFAULT_VARIANT}",
    )
    group.addoption(
        "--base-model",
        dest="trust_base_model",
        metavar="ID_OR_PATH",
        help="dense base model: hub id or local folder; default the embedded SmolLM2-135M-Instruct",
    )
    group.addoption(
        "--trust-data",
        dest="trust_data",
        metavar="PATH|hub",
        help="DecodingTrust data/ folder, or 'hub'; default the embedded probe sets",
    )
    group.addoption(
        "--limit", dest="trust_limit", type=int, metavar="N", help="items per scenario (overrides the profile; 0 = all)"
    )
    group.addoption(
        "--thresholds",
        dest="trust_thresholds",
        default=str(ROOT / "thresholds.toml"),
        metavar="PATH",
        help="gate policy file (default: thresholds.toml at the repository root)",
    )
    group.addoption(
        "--profile",
        dest="trust_profile",
        default="ci",
        metavar="NAME",
        help="evaluation sizes from thresholds.toml: ci (small, default) or release (DecodingTrust sizes)",
    )
    group.addoption("--device", dest="trust_device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.addoption(
        "--cache-dir",
        dest="trust_cache_dir",
        metavar="PATH",
        help="checkpoints and generations cache (default $TRUSTGATE_CACHE or ~/.cache/trustgate)",
    )
    group.addoption(
        "--trust-report",
        dest="trust_report",
        default="trustgate-report",
        metavar="DIR",
        help="folder for records (JSONL) and the JSON/Markdown summary",
    )
    group.addoption("--batch-size", dest="trust_batch_size", type=int, metavar="N", help="generation batch size")
    group.addoption(
        "--calibration",
        dest="trust_calibration",
        default="auto",
        help="calibration text: auto (C4 when online, else the offline fallback), c4, fallback",
    )
    group.addoption(
        "--worst-seed",
        dest="trust_worst_seed",
        action="store_true",
        help="judge each method given with several @seedN on its worst seed, not the seed mean "
        "(same as thresholds.toml [gate] worst_seed = true)",
    )
    group.addoption(
        "--trust-remote-code",
        dest="trust_remote_code",
        action="store_true",
        help="allow model repositories to run their own code (off by default)",
    )


def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    try:
        settings = build_settings(
            models=option.trust_models,
            base_model=option.trust_base_model,
            trust_data=option.trust_data,
            thresholds=option.trust_thresholds,
            profile=option.trust_profile,
            cache_dir=option.trust_cache_dir,
            report_dir=option.trust_report,
            device=option.trust_device,
            limit=option.trust_limit,
            batch_size=option.trust_batch_size,
            calibration=option.trust_calibration,
            trust_remote_code=option.trust_remote_code,
        )
    except TrustgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS] = settings
    config.pluginmanager.register(TrustReporter(config), "trustgate-reporter")


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS]
    return [
        f"trustgate: base {settings.base_model}; variants {', '.join(v.name for v in settings.variants)}",
        f"trustgate: data {settings.data.describe()}; profile {settings.profile}; "
        f"thresholds {settings.thresholds_path}",
    ]


def variant_ids(settings: Settings) -> list[str]:
    """Each variant, then each method given with several seeds, judged as one group."""
    return [v.name for v in settings.variants] + list(seed_groups(settings.variants))


def work_units(settings: Settings) -> dict[str, str]:
    """Variant parameter id -> the xdist work unit it runs in (a seed group keeps its members)."""
    groups = seed_groups(settings.variants)
    return {name: group_of(name, groups) or name for name in variant_ids(settings)}


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """`-n N` with xdist's default `--dist load`: schedule by model (trustgate.scheduling);
    any other `--dist` the user names is left to xdist."""
    if config.getvalue("dist") != "load":
        return None
    from trustgate.scheduling import ModelScheduling  # xdist is imported only when -n is used

    return ModelScheduling(config, log, work_units(config.stash[SETTINGS]))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Trust test modules (those declaring DIMENSION) run per variant and per scenario."""
    dimension = getattr(metafunc.module, "DIMENSION", None)
    if dimension is None:
        return
    settings = metafunc.config.stash[SETTINGS]
    if "variant" in metafunc.fixturenames:
        names = variant_ids(settings)
        metafunc.parametrize("variant", names, ids=names, scope="session")
    if "scenario" in metafunc.fixturenames:
        scenarios = [*dimension.scenarios, OVERALL]
        metafunc.parametrize("scenario", scenarios, ids=scenarios)


class TrustReporter:
    """Collects comparisons from test reports (on the xdist controller too) and renders them."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.summary = RunSummary()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == COMPARISON_PROPERTY:
                self.summary.add(json.loads(value))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.summary.comparisons:
            return
        terminalreporter.section("trustgate")
        for line in self.summary.markdown().splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line("")
        for line in self.summary.table_lines():
            terminalreporter.write_line(line)
        report_dir = self.config.stash[SETTINGS].report_dir
        terminalreporter.write_line(f"summary: {report_dir / 'summary.md'}, {report_dir / 'summary.json'}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput") or not self.summary.comparisons:
            return  # xdist workers report to the controller, which writes the summary once
        settings = self.config.stash[SETTINGS]
        context = run_context(settings)
        radar = self.summary.write(settings.report_dir, context)
        alluredir = getattr(self.config.option, "allure_report_dir", None)
        if alluredir:
            from trustgate.allure_report import write_run_results

            write_run_results(Path(alluredir), self.summary.comparisons, context, self.summary.markdown(), radar)
