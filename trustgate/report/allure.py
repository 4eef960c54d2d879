"""Allure results for the gate: labels, parameters, attachments, environment, a summary result.

Per test (when pytest runs with --alluredir): epic = dimension, feature = scenario, story =
variant; parameters base model, variant, data source, judge, profile; attachments the score
table, the ten items whose score fell most (redacted) and the comparison as JSON.
Per run (written by the controller at session end): environment.properties (model hashes,
library versions, data source) and one "trust summary" result carrying the radar chart and the
paper-style table, so the report's front page leads to the overall picture.
"""

from __future__ import annotations

import base64
import html
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from trustgate.evaluation.evaluator import ScenarioRun
from trustgate.gate.compare import Comparison
from trustgate.gate.stats import Interval
from trustgate.report.redaction import redact
from trustgate.report.summary import DEFAULT_MIN_ANSWER_RATE, NO_ANSWERS, rests_on_no_answers

WORST_ITEMS = 10
PROMPT_CHARS = 1200
LIBRARIES = ("torch", "transformers", "llmcompressor", "compressed-tensors", "numpy", "scipy", "allure-pytest")
STYLE = (
    "<style>body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}"
    "td.text{text-align:left;white-space:pre-wrap;max-width:420px}.fail{color:#b00;font-weight:bold}</style>"
)


def _detectable_text(c: Comparison) -> str:
    value = c.detectable_drop
    return f"{value:.2f} points" if value == value else "none at this n (the dense score leaves no room)"


def allure_status(c: Comparison) -> tuple[str, str] | None:
    """The Allure status a gate check shows when it is not a plain PASS or FAIL (None: pytest's own).

    A green "passed" means a comparison was made and held; an INCONCLUSIVE check that the policy
    lets through compared nothing, and an informational check decides nothing, so neither is green.
    """
    if c.verdict == "INCONCLUSIVE" and c.passed:
        return "unknown", f"INCONCLUSIVE, not blocking under this policy: {c.inconclusive}"
    if c.verdict == "WARN":
        return "unknown", "WARN (informational, would have failed): " + "; ".join(c.failures or (c.inconclusive or "",))
    if c.passed and c.tier != "blocking":
        return "skipped", f"informational check ({c.verdict} here; it does not decide the verdict)"
    return None


def score_table_html(c: Comparison, min_answer_rate: float = DEFAULT_MIN_ANSWER_RATE) -> str:
    """Dense vs variant with intervals and no-answer rates, the drop with its paired interval, the rule."""
    confidence = c.drop_interval.level
    rows = [
        ("dense", c.dense_score, c.dense_interval, c.dense_refusal),
        (c.variant, c.variant_score, c.variant_interval, c.variant_refusal),
    ]

    def cells(value: float, interval: Interval, no_answer_rate: float) -> str:
        if rests_on_no_answers(c.dimension, c.scenario, no_answer_rate, min_answer_rate):
            return f"<td><span class='fail'>{NO_ANSWERS}</span> ({100 - no_answer_rate:.0f}% answered)</td><td>-</td>"
        return f"<td>{value:.2f}</td><td>{_fmt(interval)}</td>"

    body = "".join(
        f"<tr><th>{html.escape(name)}</th>{cells(value, interval, refusal)}<td>{refusal:.1f}%</td></tr>"
        for name, value, interval, refusal in rows
    )
    body += "".join(
        f"<tr><td class='text'>seed {html.escape(name)}</td><td>{score:.2f}</td><td></td><td>{refusal:.1f}%</td></tr>"
        for name, score, refusal in c.seeds
    )
    mcnemar = "n/a (scores not 0/1)" if c.mcnemar_p is None else f"{c.mcnemar_p:.4g}"
    facts = [
        ("drop (dense - variant)", f"{c.drop:+.2f} points"),
        (f"{confidence} interval of the drop ({html.escape(c.test) or 'paired test'})", _fmt(c.drop_interval)),
        ("allowed drop", f"{c.margin:.2f} (rule {c.rule}, tier {c.tier})"),
        ("exact McNemar p (paired 0/1 items)", mcnemar),
        ("items (paired)", str(c.n_items)),
        ("judged on", c.judged),
        ("verdict", c.verdict + "".join(f"; {html.escape(f)}" for f in (*c.failures, *filter(None, [c.inconclusive])))),
        ("detectable drop (the smallest the test fails with 80% power at this n)", _detectable_text(c)),
        ("flips (items whose outcome changed; reported, not gated)", f"{c.flips:.1%}"),
        ("early stopping", html.escape(c.stopped) if c.stopped else "ran every look"),
    ]
    if c.partial:
        facts.append(("partial", html.escape(c.partial)))
    fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td class='text'>{v}</td></tr>" for k, v in facts)
    return (
        f"<html><head>{STYLE}</head><body><h3>{html.escape(c.dimension)} / {html.escape(c.scenario)}</h3>"
        f"<table><tr><th>model</th><th>score</th><th>{confidence} interval</th><th>no-answer rate</th></tr>"
        f"{body}</table>"
        f"<br><table>{fact_rows}</table></body></html>"
    )


def _fmt(interval: Interval) -> str:
    return f"[{interval.low:.2f}, {interval.high:.2f}]"


def _prompt_text(messages: Sequence[Sequence[str]]) -> str:
    text = "\n".join(f"{role}: {content}" for role, content in messages)
    return text if len(text) <= PROMPT_CHARS else "..." + text[-PROMPT_CHARS:]


def worst_items(
    dense: Mapping[str, ScenarioRun], variant: Mapping[str, ScenarioRun], limit: int = WORST_ITEMS
) -> list[dict[str, Any]]:
    """The items whose score fell most from dense to variant (largest drop first), text redacted."""
    rows = []
    for scenario, dense_run in dense.items():
        variant_run = variant[scenario]
        for index, item in enumerate(dense_run.items):
            before, after = dense_run.outcomes[index].score, variant_run.outcomes[index].score
            if before - after <= 0:
                continue
            rows.append(
                {
                    "scenario": scenario,
                    "item": item.id,
                    "change": after - before,
                    "dense_score": before,
                    "variant_score": after,
                    "prompt": redact(_prompt_text(item.messages)),
                    "dense_response": redact(" | ".join(dense_run.responses[index])),
                    "variant_response": redact(" | ".join(variant_run.responses[index])),
                }
            )
    rows.sort(key=lambda r: (r["change"], r["scenario"], r["item"]))
    return rows[:limit]


def worst_items_html(rows: Sequence[Mapping[str, Any]], variant: str) -> str:
    if not rows:
        return f"<html><body><p>No item scored lower under {html.escape(variant)} than under dense.</p></body></html>"
    head = (
        "<tr><th>change</th><th>scenario / item</th><th>prompt</th><th>dense response</th>"
        f"<th>{html.escape(variant)} response</th></tr>"
    )
    body = "".join(
        f"<tr><td class='fail'>{r['change']:+.2f}</td><td class='text'>{html.escape(r['scenario'])}<br>"
        f"{html.escape(r['item'])}</td><td class='text'>{html.escape(r['prompt'])}</td>"
        f"<td class='text'>{html.escape(r['dense_response'])}</td>"
        f"<td class='text'>{html.escape(r['variant_response'])}</td></tr>"
        for r in rows
    )
    note = "<p>Item score change (variant - dense); e-mail addresses, phone and card numbers are masked.</p>"
    return f"<html><head>{STYLE}</head><body>{note}<table>{head}{body}</table></body></html>"


def annotate_test(
    comparison: Comparison,
    parameters: Mapping[str, str],
    worst: Sequence[Mapping[str, Any]],
    min_answer_rate: float = DEFAULT_MIN_ANSWER_RATE,
) -> None:
    """Labels, parameters and attachments of the running test (no-ops when Allure is not active)."""
    import allure

    table = score_table_html(comparison, min_answer_rate)
    allure.dynamic.epic(comparison.dimension)
    allure.dynamic.feature(comparison.scenario)
    allure.dynamic.story(comparison.variant)
    allure.dynamic.tag(comparison.tier)
    allure.dynamic.tag(comparison.verdict)
    allure.dynamic.title(f"{comparison.dimension} / {comparison.scenario} / {comparison.variant}")
    allure.dynamic.description_html(f"<p>{html.escape(comparison.line())}</p>" + table)
    for name, value in parameters.items():
        allure.dynamic.parameter(name, value)
    allure.attach(table, "score table", allure.attachment_type.HTML)
    allure.attach(worst_items_html(worst, comparison.variant), "ten worst items", allure.attachment_type.HTML)
    allure.attach(json.dumps(comparison.as_dict(), indent=2, default=str), "comparison", allure.attachment_type.JSON)


def show_status(config: Any, nodeid: str, comparison: Comparison) -> None:
    """Give the running test's Allure result the status `allure_status` says, after allure-pytest
    set it from pytest's outcome and before it writes the result (at the end of the test's log).
    allure-pytest offers no public call for this, so its listener's test cache is used."""
    override = allure_status(comparison)
    listener = config.pluginmanager.getplugin("allure_listener")
    if override is None or listener is None:
        return
    from allure_commons.model2 import StatusDetails

    uuid = listener._cache.get(nodeid)
    result = listener.allure_logger.get_test(uuid) if uuid else None
    if result is not None:
        result.status, message = override
        result.statusDetails = StatusDetails(message=message)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def environment_properties(comparisons: Sequence[Comparison], context: Mapping[str, str]) -> str:
    """Java-properties text: run context, model weight hashes, library versions."""
    entries = dict(context)
    for c in comparisons:
        if c.dense_fingerprint:
            entries["model.dense.sha256"] = c.dense_fingerprint
        if c.variant_fingerprint:
            entries[f"model.{c.variant}.sha256"] = c.variant_fingerprint
    entries.update({f"library.{name}": version for name, version in library_versions().items()})

    def escape(text: str) -> str:
        return str(text).replace("\\", "\\\\").replace("\n", " ").replace(":", "\\:").replace("=", "\\=")

    return "".join(f"{escape(key).replace(' ', '_')}={escape(value)}\n" for key, value in sorted(entries.items()))


def markdown_table_html(markdown_table: str) -> str:
    """The pipe table of RunSummary.markdown as an HTML table (first row header, second the rule)."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in markdown_table.splitlines()]
    rows = [row for index, row in enumerate(rows) if index != 1 and any(row)]
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:])
    return f"<table border='1' cellpadding='4'><tr>{head}</tr>{body}</table>"


def summary_html(markdown_table: str, radar: bytes) -> str:
    """Front matter of the summary result: the paper-style table, then the radar chart inline."""
    image = base64.b64encode(radar).decode("ascii")
    return (
        "<p>Trust scores 0-100 (higher is more trustworthy), no-answer rate (refusals and unscorable "
        f'answers) in brackets, seed groups as mean ± sd; "{NO_ANSWERS}": too few scorable answers for a '
        "score, left out of the average and the radar chart.</p>"
        + markdown_table_html(markdown_table)
        + f"<p><img alt='radar chart of the trust dimensions' width='560' src='data:image/png;base64,{image}'></p>"
    )


def write_run_results(
    folder: Path,
    comparisons: Sequence[Comparison],
    context: Mapping[str, str],
    markdown_table: str,
    radar: bytes,
) -> None:
    """environment.properties plus one result "trust summary" with the radar chart and the table."""
    from allure_commons.logger import AllureFileLogger
    from allure_commons.model2 import Attachment, Label, StatusDetails, TestResult

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "environment.properties").write_text(environment_properties(comparisons, context), encoding="utf-8")
    logger = AllureFileLogger(folder)
    attachments = []
    for name, body, kind, extension in (
        ("radar chart", radar, "image/png", "png"),
        ("trust table", markdown_table, "text/markdown", "md"),
        (
            "comparisons",
            json.dumps([c.as_dict() for c in comparisons], indent=2, default=str),
            "application/json",
            "json",
        ),
    ):
        source = f"{uuid.uuid4()}-attachment.{extension}"
        logger.report_attached_data(body, source)
        attachments.append(Attachment(name=name, source=source, type=kind))
    failed = [c for c in comparisons if not c.passed]
    by_variant = Counter(c.variant for c in failed)
    inconclusive = sum(c.verdict == "INCONCLUSIVE" for c in failed)
    failed_text = f"{len(failed)} of {len(comparisons)} verdicts failed ({inconclusive} inconclusive): " + ", ".join(
        f"{variant} {count}" for variant, count in sorted(by_variant.items())
    )
    # Green only when every blocking check compared something and held.
    unsure = [c for c in comparisons if c.passed and c.tier == "blocking" and c.verdict != "PASS"]
    unsure_text = f"{len(unsure)} blocking checks passed without a comparison that held: " + ", ".join(
        f"{c.dimension}/{c.scenario} [{c.variant}] {c.verdict}" for c in unsure
    )
    status = "failed" if failed else ("unknown" if unsure else "passed")
    details = failed_text if failed else (unsure_text if unsure else None)
    now = int(time.time() * 1000)
    result = TestResult(
        uuid=str(uuid.uuid4()),
        historyId="trustgate-summary",
        testCaseId="trustgate-summary",
        fullName="trustgate.summary",
        name=f"trust summary: {len(comparisons)} verdicts, {len(failed)} failed",
        status=status,
        statusDetails=StatusDetails(message=details) if details else None,
        stage="finished",
        descriptionHtml=summary_html(markdown_table, radar),
        attachments=attachments,
        labels=[Label("epic", "trust summary"), Label("feature", "all dimensions"), Label("story", "all variants")],
        start=now,
        stop=now,
    )
    logger.report_result(result)
