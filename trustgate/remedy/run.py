"""One remedy search: the plain variant on the search items, the ranking, the probes, and the
confirmation on held-out items, each judged by the gate itself.

The caller (the pytest plugin) says which checks failed and hands over a `VariantBuilder`, the
one door to compression; this module evaluates and decides, and knows nothing of recipes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from trustgate.dimensions.base import Dimension
from trustgate.dimensions.registry import OVERALL
from trustgate.evaluation.evaluator import Evaluator
from trustgate.evaluation.profiles import EvaluationSettings
from trustgate.gate.check import CheckResult, GateCheck
from trustgate.gate.compare import Comparison
from trustgate.gate.policy import Thresholds
from trustgate.models import ModelHandle
from trustgate.remedy.ranking import Probe, Ranking, rank_blocks
from trustgate.remedy.search import Blocks, ProbeResult, SearchBudget, SearchResult, search
from trustgate.remedy.sizes import effective_bytes, kept_block_cost, stored_itemsize
from trustgate.remedy.split import held_out_part, search_part
from trustgate.util.progress import say


class VariantBuilder(Protocol):
    """The plain variant and its remedies as checkpoints (implemented over compressors/)."""

    plain: str  # the plain variant's name
    kept_precision: str  # what a kept block stays at: "int8" or "dense"
    bits: int | None
    sparsity: float | None

    def name(self, blocks: Blocks) -> str: ...

    def build(self, blocks: Blocks) -> ModelHandle: ...

    def compression_log(self, handle: ModelHandle) -> Path | None: ...


@dataclass(frozen=True)
class Check:
    """One blocking check of the run: a dimension overall, or a scenario judged alone."""

    dimension: Dimension
    scenario: str = OVERALL

    @property
    def label(self) -> str:
        return f"{self.dimension.name}/{self.scenario}"


@dataclass(frozen=True)
class RemedyOptions:
    budget: SearchBudget = field(default_factory=SearchBudget)
    rank_items: int = 4  # items where dense and the variant disagree most, measured per block
    rank_blocks: int | None = None  # blocks measured by forward passes (None: all)
    rank_prompt_tokens: int = 384  # a measured prompt keeps its last N tokens
    search_share: float = 0.5  # of each scenario's sample keys; the rest confirm


@dataclass
class RemedyReport:
    variant: str
    failing: list[str]
    confirm_checks: list[str]
    kept_precision: str
    outcome: str = "NO REMEDY"  # REMEDY, NO REMEDY, NOTHING TO REMEDY
    message: str = ""
    ranking: Ranking | None = None
    search: SearchResult = field(default_factory=SearchResult)
    confirmation: list[dict] = field(default_factory=list)
    confirmed_blocks: Blocks | None = None
    plain_size: int | None = None
    recipe: Path | None = None
    seconds: float = 0.0

    def size_increase(self, probe: ProbeResult) -> float | None:
        if probe.size_bytes is None or not self.plain_size:
            return None
        return 100.0 * (probe.size_bytes - self.plain_size) / self.plain_size


def summarize(comparison: Comparison) -> dict:
    """What a probe line and the report show of one check."""
    return {
        "check": f"{comparison.dimension}/{comparison.scenario}",
        "verdict": comparison.verdict,
        "passes": comparison.passed,  # the gate lets it through: PASS, or an INCONCLUSIVE the profile reports
        "dense": round(comparison.dense_score, 2),
        "variant": round(comparison.variant_score, 2),
        "drop": round(comparison.drop, 2),
        "low": round(comparison.drop_interval.low, 2),
        "high": round(comparison.drop_interval.high, 2),
        "confidence": comparison.drop_interval.confidence,
        "n": comparison.n_items,
        "line": comparison.line(),
    }


def _selection(checks: Sequence[Check]) -> dict[str, frozenset[str]]:
    selected: dict[str, set[str]] = {}
    for check in checks:
        selected.setdefault(check.dimension.name, set()).add(check.scenario)
    return {name: frozenset(scenarios) for name, scenarios in selected.items()}


def _disagreements(results: Sequence[CheckResult], evaluator: Evaluator, dense: ModelHandle, count: int) -> list[Probe]:
    """The `count` items where dense and the variant differ most (item score and refusal: a variant
    that stops answering fails on its refusal rate), taken in turn from each check."""
    per_check = []
    for result in results:
        scored = []
        for scenario, dense_run in result.dense.items():
            variant_run = result.variant[scenario]
            for position, item in enumerate(dense_run.items):
                mine, theirs = dense_run.outcomes[position], variant_run.outcomes[position]
                gap = abs(mine.score - theirs.score) + abs(mine.refusal - theirs.refusal)
                answer = next(iter(dense_run.responses[position]), "")
                scored.append((-gap, item.id, item, answer))
        per_check.append(sorted(scored, key=lambda entry: entry[:2]))
    chosen: list[Probe] = []
    for turn in range(max((len(c) for c in per_check), default=0)):
        for entries in per_check:
            if turn < len(entries) and len(chosen) < count:
                _, _, item, answer = entries[turn]
                chosen.append(Probe(evaluator.prompts(dense, (item,))[0].text, answer))
    return chosen


@dataclass
class RemedySearch:
    evaluation: EvaluationSettings
    thresholds: Thresholds
    dense: ModelHandle
    builder: VariantBuilder
    failing: Sequence[Check]
    confirm: Sequence[Check]
    options: RemedyOptions
    out: Path
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        share = self.options.search_share
        self._handles: dict[str, ModelHandle] = {}
        self._probed: dict[Blocks, ProbeResult] = {}
        self._plain_results: list[CheckResult] = []
        self._search_items = Evaluator(
            dataclasses.replace(self.evaluation, report_dir=self.out / "search"),
            keep_loaded=self.dense.fingerprint,
            part=functools.partial(search_part, share=share),
        )
        self._held_out_items = Evaluator(
            dataclasses.replace(self.evaluation, report_dir=self.out / "confirm"),
            keep_loaded=self.dense.fingerprint,
            part=functools.partial(held_out_part, share=share),
        )

    def _gate(self, evaluator: Evaluator, checks: Sequence[Check]) -> GateCheck:
        return GateCheck(
            evaluator=evaluator,
            thresholds=self.thresholds,
            base_model=self.dense,
            variant_model=self._handles.__getitem__,
            seed_groups={},
            selected=_selection(checks),
            profile=self.evaluation.profile_name,
        )

    def _handle(self, blocks: Blocks) -> tuple[str, ModelHandle]:
        name = self.builder.name(blocks)
        if name not in self._handles:
            self._handles[name] = self.builder.build(blocks)
        return name, self._handles[name]

    def _judge(self, evaluator: Evaluator, checks: Sequence[Check], blocks: Blocks) -> list[CheckResult]:
        name, _ = self._handle(blocks)
        gate = self._gate(evaluator, checks)
        return [gate.check(check.dimension, check.scenario, name) for check in checks]

    def probe(self, blocks: Blocks, phase: str) -> ProbeResult:
        if blocks in self._probed:
            return self._probed[blocks]
        started = self.clock()
        label = "the plain variant" if not blocks else f"keeping {len(blocks)} blocks {list(blocks)}"
        say(f"remedy {self.builder.plain}: probe ({phase}) {label}")
        results = self._judge(self._search_items, self.failing, blocks)
        _, handle = self._handle(blocks)
        details = tuple(summarize(result.comparison) for result in results)
        passed = all(detail["passes"] for detail in details)
        outcome = ProbeResult(blocks, passed, self.clock() - started, effective_bytes(handle.path), details, phase)
        if not blocks:
            self._plain_results = results
        self._probed[blocks] = outcome
        say(f"remedy {self.builder.plain}: {'PASS' if passed else 'FAIL'} " + "; ".join(
            f"{d['check']} drop {d['drop']:+.2f} [{d['low']:.2f}, {d['high']:.2f}]" for d in details))  # fmt: skip
        return outcome

    def rank(self) -> Ranking:
        _, plain = self._handle(())
        probes = _disagreements(self._plain_results, self._search_items, self.dense, self.options.rank_items)
        self._search_items.close()  # the ranking loads both models itself
        say(f"remedy {self.builder.plain}: ranking decoder blocks on {len(probes)} items")
        return rank_blocks(
            self.dense,
            plain,
            probes,
            self.builder.compression_log(plain),
            device=self.evaluation.device,
            measure=self.options.rank_blocks,
            max_prompt_tokens=self.options.rank_prompt_tokens,
            trust_remote_code=self.evaluation.trust_remote_code,
        )

    def run(self) -> RemedyReport:
        started = self.clock()
        report = RemedyReport(
            variant=self.builder.plain,
            failing=[check.label for check in self.failing],
            confirm_checks=[check.label for check in self.confirm],
            kept_precision=self.builder.kept_precision,
        )
        try:
            self._run(report, started)
        finally:
            self._search_items.close()
            self._held_out_items.close()
            report.seconds = self.clock() - started
        return report

    def _run(self, report: RemedyReport, started: float) -> None:
        plain = self.probe((), "plain")
        report.plain_size = plain.size_bytes
        if plain.passed:
            report.search = SearchResult([plain], None, "the plain variant passes on the search items")
            report.outcome = "NOTHING TO REMEDY"
            report.message = (
                "the plain variant passes every failing check on the search items, so the run's failure "
                "rests on the other items; raise --trust-limit to tell"
            )
            return
        report.ranking = ranking = self.rank()
        _, plain_handle = self._handle(())
        itemsize = stored_itemsize(plain_handle.path)

        def size_increase(blocks: Blocks) -> float:
            cost = kept_block_cost(ranking.block_parameters, blocks, self.builder.bits, self.builder.sparsity, itemsize)
            return 100.0 * cost / plain.size_bytes if plain.size_bytes else 0.0

        report.search = found = search(
            ranking.order, self.probe, self.options.budget, size_increase, started, self.clock
        )  # its plain probe is the one above, remembered
        if found.best is None:
            report.message = found.stopped
            return
        say(f"remedy {self.builder.plain}: confirming {list(found.best.blocks)} on held-out items")
        results = self._judge(self._held_out_items, self.confirm, found.best.blocks)
        report.confirmation = [summarize(result.comparison) for result in results]
        if all(detail["passes"] for detail in report.confirmation):
            report.outcome = "REMEDY"
            report.confirmed_blocks = found.best.blocks
            report.message = f"confirmed on held-out items ({found.stopped})"
            weak = [d["check"] for d in report.confirmation if d["verdict"] != "PASS"]
            if weak:
                report.message += (
                    f"; INCONCLUSIVE there, which this profile reports without blocking: {', '.join(weak)} "
                    "(too few held-out items to prove it; confirm with a larger --trust-limit "
                    "or --trust-profile release)"
                )
        else:
            report.message = (
                f"the best set found ({list(found.best.blocks)}) passed on the search items but not on the "
                "held-out items: not a remedy"
            )


def write_probes(report: RemedyReport, path: Path) -> None:
    """One JSON line per probe (blocks, verdict, size, seconds, every check's drop and interval)."""
    with path.open("w", encoding="utf-8") as handle:
        for probe in report.search.probes:
            row = {**dataclasses.asdict(probe), "size_increase_percent": report.size_increase(probe)}
            handle.write(json.dumps(row) + "\n")
