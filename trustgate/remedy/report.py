"""What a remedy search hands back: the ranked table, one line per probe, the verdict, and the
recipe file the user passes back with `--model recipe:PATH`."""

from __future__ import annotations

import json
from pathlib import Path

from trustgate.remedy.run import RemedyReport, write_probes
from trustgate.remedy.search import ProbeResult

RECIPE_FILE = "remedy.toml"  # a confirmed remedy
BEST_FOUND_FILE = "best-found.toml"  # no remedy: the best set the search found, to try at larger n


def _mb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:.1f} MB"


def probe_line(report: RemedyReport, number: int, probe: ProbeResult) -> str:
    kept = "plain variant" if not probe.blocks else f"k={len(probe.blocks)} keep {list(probe.blocks)}"
    increase = report.size_increase(probe)
    size = _mb(probe.size_bytes) + (f" ({increase:+.1f}%)" if increase is not None and probe.blocks else "")
    checks = "; ".join(
        f"{d['check']} {d['verdict']} {d['dense']:.2f} -> {d['variant']:.2f}, drop {d['drop']:+.2f} "
        f"[{d['low']:.2f}, {d['high']:.2f}] n={d['n']}"
        for d in probe.details
    )
    return f"probe {number} ({probe.phase}): {kept}; {size}; {probe.seconds:.0f}s; {checks}"


def ranking_lines(report: RemedyReport) -> list[str]:
    ranking = report.ranking
    if ranking is None:
        return []
    lines = [
        f"Blocks ranked on {ranking.items} items ({ranking.forward_passes} forward passes, {ranking.seconds:.0f}s); "
        f"free signal: {ranking.free_signal}; KL of the plain variant from dense: "
        + ("n/a" if ranking.plain_divergence is None else f"{ranking.plain_divergence:.4f}"),
        "",
        "| rank | block | free signal | KL with the block restored | gain |",
        "|---:|---:|---:|---:|---:|",
    ]
    for rank, block in enumerate(ranking.blocks, start=1):
        divergence = "not measured" if block.divergence is None else f"{block.divergence:.4f}"
        gain = "" if block.gain is None else f"{block.gain:+.4f}"
        lines.append(f"| {rank} | {block.index} | {block.free_signal:.4g} | {divergence} | {gain} |")
    lines.extend(f"note: {note}" for note in ranking.notes)
    return lines


def best_found(report: RemedyReport) -> ProbeResult | None:
    """The set to show when nothing was confirmed: the search's best, else the probe that came
    closest (the smallest worst drop)."""
    if report.search.best is not None:
        return report.search.best
    kept = [p for p in report.search.probes if p.blocks and p.details]
    return min(kept, key=lambda p: max(d["drop"] for d in p.details), default=None)


def verdict_line(report: RemedyReport) -> str:
    if report.outcome == "REMEDY" and report.confirmed_blocks is not None:
        probe = next(p for p in report.search.probes if p.blocks == report.confirmed_blocks)
        increase = report.size_increase(probe)
        cost = f"+{increase:.1f}%" if increase is not None else "size unknown"
        return (
            f"REMEDY {report.variant}: keep blocks {list(report.confirmed_blocks)} at {report.kept_precision}; "
            f"size {_mb(probe.size_bytes)} against {_mb(report.plain_size)} ({cost}); {report.message}"
        )
    best = best_found(report)
    tail = f"; best found: keep {list(best.blocks)} ({_mb(best.size_bytes)})" if best else ""
    return f"{report.outcome} {report.variant}: {report.message}{tail}"


def recipe_text(report: RemedyReport, blocks: tuple[int, ...], confirmed: bool) -> str:
    found = {
        "failing": report.failing,
        "confirmed_on_held_out_items": confirmed,
        "kept_at": report.kept_precision,
        "verdict": verdict_line(report),
    }
    lines = [
        "# trustgate remedy recipe: pass it back with  pytest --model recipe:<this file>",
        f"variant = {json.dumps(report.variant)}",
        f"kept_blocks = {json.dumps(list(blocks))}",
        "",
        "[found]  # how the search found it (not read back)",
    ]
    lines.extend(f"{key} = {json.dumps(value)}" for key, value in found.items())
    return "\n".join(lines) + "\n"


def write_report(report: RemedyReport, out: Path) -> list[str]:
    """Write ranking, probes, recipe and report.md under `out`; return the terminal lines."""
    out.mkdir(parents=True, exist_ok=True)
    write_probes(report, out / "probes.jsonl")
    if report.confirmed_blocks is not None:
        report.recipe = out / RECIPE_FILE
        report.recipe.write_text(recipe_text(report, report.confirmed_blocks, True), encoding="utf-8")
    elif (best := best_found(report)) is not None:
        report.recipe = out / BEST_FOUND_FILE
        report.recipe.write_text(recipe_text(report, best.blocks, False), encoding="utf-8")
    probes = [probe_line(report, n, p) for n, p in enumerate(report.search.probes, start=1)]
    confirmation = [f"held-out: {d['line']}" for d in report.confirmation]
    lines = [
        verdict_line(report),
        f"failing checks: {', '.join(report.failing)}; wall time {report.seconds / 60:.1f} min; search ended: "
        f"{report.search.stopped or 'not started'}",
        *probes,
        *confirmation,
    ]
    if report.recipe is not None:
        lines.append(f"recipe: {report.recipe}  (pytest --model recipe:{report.recipe})")
    markdown = [f"# Remedy for {report.variant}", "", *lines[:2], "", "## Ranking", "", *ranking_lines(report)]
    markdown += ["", "## Probes", "", *(f"- {line}" for line in probes + confirmation)]
    (out / "report.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
    return lines
