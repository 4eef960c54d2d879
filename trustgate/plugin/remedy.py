"""`pytest --trust-remedy`: after the gate, a remedy search for each variant that failed.

The plugin's part: which checks failed and which block the run (from the run's comparisons),
compression of the probes through `compressors/` (this package is its only importer), and the
terminal lines. The search itself is `trustgate.remedy`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trustgate.dimensions import get_dimension
from trustgate.dimensions.registry import OVERALL
from trustgate.models import ModelHandle
from trustgate.plugin.models import base_model_handle
from trustgate.plugin.repository import import_compressors
from trustgate.plugin.settings import Settings
from trustgate.util.errors import TrustgateError

if TYPE_CHECKING:
    from compressors.variants import VariantSpec
    from trustgate.gate.compare import Comparison
    from trustgate.remedy import Check


@dataclass
class CompressorBuilder:
    """A plain variant and its remedy probes as cached checkpoints (trustgate.remedy.VariantBuilder)."""

    spec: VariantSpec
    base: ModelHandle
    cache_root: Path
    calibration: str = "auto"

    @property
    def plain(self) -> str:
        return self.spec.name

    @property
    def kept_precision(self) -> str:
        return self.spec.kept_precision

    @property
    def bits(self) -> int | None:
        return self.spec.bits

    @property
    def sparsity(self) -> float | None:
        return self.spec.sparsity

    def name(self, blocks: tuple[int, ...]) -> str:
        return self.spec.keeping(blocks).name

    def build(self, blocks: tuple[int, ...]) -> ModelHandle:
        compressors = import_compressors()
        spec = self.spec.keeping(blocks)
        handle, _ = compressors.compressed_model(spec, self.base, self.cache_root, self.calibration)
        return handle

    def compression_log(self, handle: ModelHandle) -> Path | None:
        log = handle.path / "compression.log"
        return log if log.is_file() else None


def blocking_checks(comparisons: Sequence[Comparison]) -> list[Check]:
    """The run's blocking checks: each dimension overall, or its scenarios where they were judged
    alone (the run selected them without the overall check)."""
    from trustgate.remedy import Check

    scenarios: dict[str, list[str]] = {}
    for comparison in comparisons:
        names = scenarios.setdefault(comparison.dimension, [])
        if comparison.scenario not in names:
            names.append(comparison.scenario)
    checks = []
    for dimension, names in scenarios.items():
        for scenario in [OVERALL] if OVERALL in names else names:
            checks.append(Check(get_dimension(dimension), scenario))
    return checks


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name)


def remedies(settings: Settings, comparisons: Sequence[Comparison]) -> list[str]:
    """Search a remedy for every plain variant of the run with a failing blocking check; the
    terminal lines of each (its reports go to <trust-report>/remedy/<variant>/)."""
    from trustgate.remedy import RemedyOptions, RemedySearch, SearchBudget
    from trustgate.remedy.report import write_report

    assert settings.remedy is not None
    blocking = blocking_checks(comparisons)
    labels = {check.label for check in blocking}
    lines: list[str] = []
    specs = {spec.name: spec for spec in settings.variants}
    for variant in dict.fromkeys(c.variant for c in comparisons):
        mine = [c for c in comparisons if c.variant == variant and f"{c.dimension}/{c.scenario}" in labels]
        failing = [check for check in blocking if any(
            c.verdict == "FAIL" and (c.dimension, c.scenario) == (check.dimension.name, check.scenario) for c in mine
        )]  # fmt: skip
        undecided = sorted(f"{c.dimension}/{c.scenario}" for c in mine if c.verdict == "INCONCLUSIVE")
        if not failing:
            tail = f" (INCONCLUSIVE, nothing to remedy: {', '.join(undecided)})" if undecided else ""
            lines.append(f"{variant}: no failing check{tail}")
            continue
        spec = specs.get(variant)
        if spec is None or spec.method in ("dense", "checkpoint") or spec.kept_blocks:
            why = "a seed group (remedy each seed)" if spec is None else "not a variant trustgate compresses"
            lines.append(f"{variant}: not searched: {why}")
            continue
        budget = settings.remedy
        options = RemedyOptions(
            budget=SearchBudget(budget.probes, budget.minutes, budget.max_size_increase),
            rank_items=budget.rank_items,
            rank_blocks=budget.rank_blocks,
            rank_prompt_tokens=budget.prompt_tokens,
        )
        out = settings.evaluation.report_dir / "remedy" / _safe(variant)
        base = base_model_handle(settings)
        builder = CompressorBuilder(spec, base, settings.evaluation.cache_root, settings.calibration)
        search = RemedySearch(settings.evaluation, settings.thresholds, base, builder, failing, blocking, options, out)
        lines.extend(guarded(lambda search=search, out=out: write_report(search.run(), out), variant, out))
    return lines


def guarded(search: Callable[[], list[str]], variant: str, out: Path) -> list[str]:
    """The search's lines, or one line saying why it stopped: a remedy search is advice after the
    verdict, and its failure must not take the gate's report and exit status with it."""
    try:
        return search()
    except TrustgateError as exc:
        return [f"{variant}: remedy stopped: {exc}"]
    except Exception as exc:  # any bug in the search ends the search, not the session
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.txt").write_text("".join(traceback.format_exception(exc)))
        return [
            f"{variant}: remedy stopped by an unexpected {type(exc).__name__}: {exc} "
            f"(traceback: {out / 'error.txt'}; the gate's verdicts above stand; please report it)"
        ]
