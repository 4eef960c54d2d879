"""The Allure HTML report, opened in a real headless Chromium: it loads and shows the trust results.

Results come from a synthetic run through the real plugin (three dimensions, dense, gptq4,
magnitude-2:4 and two gptq3 seeds), or from a real run when TRUSTGATE_ALLURE_RESULTS names its
--alluredir. The report is built with scripts/build_report.sh (the npm Allure 3 CLI). Screenshots
are kept in test-artefacts/ (gitignored) for people and CI artefacts.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import ROOT, run_fake_suite

ARTEFACTS = ROOT / "test-artefacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# Virtual time lets the single-page app render before the capture; a loaded CI machine may need
# more, so a page whose expected text is missing is rendered again with a longer budget.
BUDGETS_MS = (15_000, 30_000, 60_000)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium); the CI script installs it")
    return found


def browse(url: str, profile: Path, *action: str, budget_ms: int = BUDGETS_MS[0]) -> subprocess.CompletedProcess:
    """One headless Chromium run with a fresh profile folder (no state shared between runs)."""
    shutil.rmtree(profile, ignore_errors=True)
    budget = f"--virtual-time-budget={budget_ms}"
    command = [chromium(), *CHROMIUM_FLAGS, budget, f"--user-data-dir={profile}", *action, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


def rendered_text(url: str, profile: Path, expected: tuple[str, ...]) -> str:
    """The page's visible text once every expected string shows, or the last attempt's text."""
    for budget in BUDGETS_MS:
        text = visible_text(browse(url, profile, "--dump-dom", budget_ms=budget).stdout)
        if all(fragment in text for fragment in expected):
            break
    return text


def visible_text(dom: str) -> str:
    """The page's text, including frames drawn from srcdoc (Allure renders HTML descriptions so)."""
    frames = " ".join(html.unescape(doc) for doc in re.findall(r'srcdoc="([^"]*)"', dom))
    dom = dom + frames
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed; scripts/setup.sh needs it for the Allure 3 CLI")
    given = os.environ.get("TRUSTGATE_ALLURE_RESULTS")
    if given:
        results = Path(given).resolve()
    else:
        suite = tmp_path_factory.mktemp("suite")
        # 40 synthetic items a dimension cannot prove a drop within a few points (INCONCLUSIVE, too few
        # items); a 45-point utility margin gives dense against itself a PASS page to look at.
        policy = tmp_path_factory.mktemp("policy") / "thresholds.toml"
        shipped = (ROOT / "thresholds.toml").read_text()
        policy.write_text(shipped.replace("[dimensions.utility]\nmargin = 3.0", "[dimensions.utility]\nmargin = 45.0"))
        finished = run_fake_suite(
            suite, "--alluredir", "allure-results", "-q", "--model", "dense", "--trust-thresholds", str(policy)
        )
        assert finished.returncode == 1, finished.stdout[-3000:] + finished.stderr[-3000:]  # magnitude-2:4 fails
        results = suite / "allure-results"
    folder = tmp_path_factory.mktemp("report") / "allure-report"
    subprocess.run([str(ROOT / "scripts/build_report.sh"), str(results), str(folder)], check=True, timeout=300)
    return folder


def summary_id(report: Path) -> str:
    results = json.loads((report / "test-results.json").read_text())["byId"]
    return next(key for key, value in results.items() if value["name"].startswith("trust summary"))


def test_report_is_one_self_contained_page(report):
    assert (report / "index.html").stat().st_size > 100_000
    assert not (report / "data").exists(), "singleFile: the report must open from disk without a server"


def test_front_page_lists_dimensions_scenarios_and_variants(report, tmp_path):
    names = json.loads((report / "test-results.json").read_text())["byId"].values()
    parts = {part for value in names if value["name"].count(" / ") == 2 for part in value["name"].split(" / ")}
    expected = (*sorted(parts), "Total")  # every dimension, scenario and variant of the run
    assert len(parts) >= 3
    text = rendered_text((report / "index.html").as_uri(), tmp_path / "profile", expected)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not shown on the report's front page"


def test_summary_page_shows_table_and_radar_and_is_captured(report, tmp_path):
    url = f"{(report / 'index.html').as_uri()}#/{summary_id(report)}"
    text = rendered_text(url, tmp_path / "dom", ("trust summary", "average", "dense"))
    assert "trust summary" in text and "average" in text and "dense" in text
    assert re.search(r"\d+\.\d \(no answer \d+%\)", text), "the paper-style table with refusal rates is missing"
    ARTEFACTS.mkdir(exist_ok=True)
    shot = ARTEFACTS / "allure-report-summary.png"
    shot.unlink(missing_ok=True)
    browse(url, tmp_path / "shot", "--window-size=1400,1500", f"--screenshot={shot}")
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200, "the screenshot is (nearly) blank"


# One passing, one failing and one INCONCLUSIVE check of the synthetic run, as a reader sees them.
STATUS_PAGES = {
    "pass": ("utility / overall / dense", "passed", "Passed"),
    "fail": ("utility / overall / magnitude-2:4", "failed", "Failed"),
    "inconclusive": ("stereotype / overall / gptq4", "unknown", "Unknown"),  # too few items: never a green pass
}


@pytest.mark.parametrize("kind", sorted(STATUS_PAGES))
def test_pass_fail_and_inconclusive_pages_say_what_they_are_and_are_captured(report, tmp_path, kind):
    if os.environ.get("TRUSTGATE_ALLURE_RESULTS"):
        pytest.skip("the synthetic run's checks are named here; a real run's are not")
    name, status, shown = STATUS_PAGES[kind]
    results = json.loads((report / "test-results.json").read_text())["byId"]
    found = {value["name"]: (key, value["status"]) for key, value in results.items()}
    key, recorded = found[name]
    assert recorded == status
    url = f"{(report / 'index.html').as_uri()}#/{key}"
    text = rendered_text(url, tmp_path / "dom", (name, shown))
    assert name in text and shown in text, text[:2000]
    if kind == "inconclusive":
        assert "INCONCLUSIVE" in text and "Passed" not in text  # the verdict rides as a tag; nothing green
    ARTEFACTS.mkdir(exist_ok=True)
    shot = ARTEFACTS / f"allure-report-{kind}.png"
    shot.unlink(missing_ok=True)
    browse(url, tmp_path / "shot", "--window-size=1400,1200", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000


def test_front_page_screenshot(report, tmp_path):
    ARTEFACTS.mkdir(exist_ok=True)
    shot = ARTEFACTS / "allure-report-front.png"
    shot.unlink(missing_ok=True)
    browse((report / "index.html").as_uri(), tmp_path / "profile", "--window-size=1400,1000", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000
