"""Run summary: the verdict table in the terminal, summary.json and a paper-style summary.md."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate.dimensions.registry import NAMES, OVERALL
from trustgate.gate.compare import Comparison
from trustgate.gate.stats import seed_spread

COMPARISON_PROPERTY = "trustgate_comparison"
NOT_GATED_PROPERTY = "trustgate_not_gated"  # a selected check skipped for missing data


NO_ANSWERS = "no answers"
DEFAULT_MIN_ANSWER_RATE = 10.0  # thresholds.toml [gate] min_base_answer_rate, when none is given


def _column(c: Comparison) -> str:
    return f"{c.dimension}/{c.scenario}"


def scores_refusals(dimension: str, scenario: str) -> bool:
    """Does a refusal count as an answer here (toxicity, privacy, OOD knowledge)? Then a high
    no-answer rate is a score, not a missing one. The overall check: only when every scenario does."""
    from trustgate.dimensions import all_dimensions

    found = all_dimensions().get(dimension)
    if found is None:
        return False
    scenarios = found.scenarios if scenario == OVERALL else (scenario,)
    return all(found.refusal_carries_signal(name) for name in scenarios)


def rests_on_no_answers(dimension: str, scenario: str, no_answer_rate: float, min_answer_rate: float) -> bool:
    """A score computed from fewer scorable answers than the gate's `min_base_answer_rate`: a
    model that answers nothing is not "100, perfectly unbiased"; reports show "no answers"."""
    answered = 100.0 - no_answer_rate
    return answered < min_answer_rate - 1e-9 and not scores_refusals(dimension, scenario)


def _cell(entry: dict[str, Any]) -> str:
    if entry.get("no_answers"):
        return f"{NO_ANSWERS} ({100 - entry['refusal']:.0f}% answered)"
    spread = f" ± {entry['sd']:.1f}" if "sd" in entry else ""
    return f"{entry['score']:.1f}{spread} (no answer {entry['refusal']:.0f}%)"


def _score(value: float, no_answers: bool, width: int = 7) -> str:
    return f"{'no ans':>{width}}" if no_answers else f"{value:{width}.2f}"


@dataclass
class RunSummary:
    comparisons: list[Comparison] = field(default_factory=list)
    not_gated: list[dict[str, Any]] = field(default_factory=list)  # {check, variant, reason, required}
    min_answer_rate: float = DEFAULT_MIN_ANSWER_RATE  # below it a score is shown as "no answers"

    def add(self, comparison: Comparison) -> None:
        self.comparisons.append(comparison)

    def no_answers(self, c: Comparison, no_answer_rate: float) -> bool:
        return rests_on_no_answers(c.dimension, c.scenario, no_answer_rate, self.min_answer_rate)

    def table_lines(self) -> list[str]:
        header = (
            f"{'dimension/scenario':<34} {'variant':<18} {'dense':>7} {'variant':>7} {'drop':>7} "
            f"{'drop CI':>17} {'refusal d/v %':>14} {'allowed':>7} {'detect':>7} {'flips':>6} {'n':>5}  verdict"
        )
        lines = [header, "-" * len(header)]
        for c in sorted(self.comparisons, key=lambda c: (c.dimension, c.scenario, c.variant)):
            verdict = c.verdict.lower() if c.passed else c.verdict
            if c.seeds:
                verdict += f" ({c.judged})"
            if c.partial:
                verdict += " (partial)"
            if c.stopped:
                verdict += " (stopped early)"
            interval = c.drop_interval
            dense = _score(c.dense_score, self.no_answers(c, c.dense_refusal))
            variant = _score(c.variant_score, self.no_answers(c, c.variant_refusal))
            lines.append(
                f"{c.dimension + '/' + c.scenario:<34} {c.variant:<18} {dense} "
                f"{variant} {c.drop:+7.2f} [{interval.low:6.2f},{interval.high:6.2f}] "
                f"{c.dense_refusal:6.1f}/{c.variant_refusal:<6.1f} {c.margin:7.2f} {c.detectable_drop:7.2f} "
                f"{c.flips:6.1%} {c.n_items:5d}  {verdict}"
            )
            lines.extend(f"    {reason}" for reason in (*c.failures, *filter(None, [c.inconclusive, c.stopped])))
        return lines

    def overall_scores(self) -> dict[str, dict[str, dict[str, Any]]]:
        """model -> dimension -> {score, refusal, no_answers[, sd, seeds]}: the paper's table, dense once.

        A seed group's score is the mean over its seeds with their sample standard deviation,
        whichever way the gate judged it. A score resting on fewer scorable answers than
        `min_answer_rate` has `no_answers` true: reports show it as such, never as a plain score.
        """
        return self._scores(lambda c: c.dimension if c.scenario == OVERALL else None)

    def table_scores(self) -> dict[str, dict[str, dict[str, float]]]:
        """As `overall_scores`, with a "dimension/scenario" column for every dimension whose
        overall check did not run (e.g. `-k "stereotype and benign"`)."""
        overall = {c.dimension for c in self.comparisons if c.scenario == OVERALL}
        return self._scores(
            lambda c: c.dimension if c.scenario == OVERALL else (None if c.dimension in overall else _column(c))
        )

    def _scores(self, column_of) -> dict[str, dict[str, dict[str, float]]]:
        table: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        for c in self.comparisons:
            column = column_of(c)
            if column is None:
                continue
            table["dense"][column] = {
                "score": c.dense_score,
                "refusal": c.dense_refusal,
                "no_answers": self.no_answers(c, c.dense_refusal),
            }
            if c.seeds:
                spread = seed_spread([score for _, score, _ in c.seeds])
                refusal = sum(r for _, _, r in c.seeds) / len(c.seeds)
                cell = {"score": spread.mean, "refusal": refusal, "sd": spread.sd, "seeds": spread.n}
            else:
                cell = {"score": c.variant_score, "refusal": c.variant_refusal}
            table[c.variant][column] = {**cell, "no_answers": self.no_answers(c, cell["refusal"])}
        return dict(table)

    def markdown(self) -> str:
        """Rows = models, columns = dimensions + average; no-answer rate in brackets, seed spread as ± sd.
        The average is over whole dimensions with answers only ("of k" says how many when some have
        none); a lone scenario's column is named dimension/scenario."""
        scores = self.table_scores()
        order = {name: i for i, name in enumerate(NAMES)}
        columns = sorted({col for row in scores.values() for col in row}, key=lambda col: (
            order.get(col.split("/")[0], len(order)), col))  # fmt: skip
        lines = [
            "| " + " | ".join(["model", *columns, "average"]) + " |",
            "|" + "---|" * (len(columns) + 2),
        ]
        for model in sorted(scores, key=lambda m: (m != "dense", m)):
            row = scores[model]
            cells = [_cell(row[col]) if col in row else "-" for col in columns]
            whole = [row[col] for col in columns if col in row and "/" not in col]
            present = [cell["score"] for cell in whole if not cell["no_answers"]]
            average = f"{sum(present) / len(present):.1f}" if present else "-"
            if present and len(present) < len(whole):
                average += f" (of {len(present)}; {len(whole) - len(present)} with {NO_ANSWERS})"
            lines.append("| " + " | ".join([model, *cells, average]) + " |")
        return "\n".join(lines) + "\n"

    def failed(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    def radar(self) -> bytes:
        from trustgate.report.radar import radar_png

        rows = self.overall_scores().items()
        return radar_png(
            {model: {d: v["score"] for d, v in row.items() if not v["no_answers"]} for model, row in rows},
            no_answers={model: sorted(d for d, v in row.items() if v["no_answers"]) for model, row in rows},
        )

    def document(self, context: Mapping[str, str]) -> str:
        """summary.md: the paper-style table, the radar chart, every verdict line."""
        setting = "; ".join(f"{key}: {value}" for key, value in context.items())
        return (
            f"# trustgate summary\n\n{setting}.\n\nScores 0-100, higher is more trustworthy; in brackets the "
            "no-answer rate (refusals and answers the parser cannot score); a seed group (`@seeds`) shows the "
            f'mean ± standard deviation over its seeds. "{NO_ANSWERS}": the model gave a scorable answer to '
            f"fewer than {self.min_answer_rate:.0f}% of the items (min_base_answer_rate), so its score means "
            "nothing; it is left out of the average and the radar chart.\n\n"
            + self.markdown()
            + "\n![radar chart of the trust dimensions](radar.png)\n\n## Verdicts\n\n```\n"
            + "\n".join(self.table_lines())
            + "\n```\n"
            + "".join(
                f"\n{'NOT GATED' if gap['required'] else 'not gated (allowed)'}: {gap['check']} [{gap['variant']}]: "
                f"{gap['reason']}\n"
                for gap in self.not_gated
            )
        )

    def write(self, folder: Path, context: Mapping[str, str]) -> bytes:
        """summary.json, summary.md and radar.png in `folder`; returns the radar PNG for other reports."""
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            **context,
            "overall": _without_scores_of_no_answers(self.overall_scores()),
            "verdicts": dict(Counter(c.verdict for c in self.comparisons)),
            "min_answer_rate": self.min_answer_rate,
            "comparisons": [
                {
                    **c.as_dict(),
                    "verdict": c.verdict,
                    "dense_no_answers": self.no_answers(c, c.dense_refusal),
                    "variant_no_answers": self.no_answers(c, c.variant_refusal),
                }
                for c in self.comparisons
            ],
            "not_gated": self.not_gated,
        }
        (folder / "summary.json").write_text(json.dumps(_finite(payload), indent=2, default=str), encoding="utf-8")
        radar = self.radar()
        (folder / "radar.png").write_bytes(radar)
        (folder / "summary.md").write_text(self.document(context), encoding="utf-8")
        return radar


def run_context(settings: Any) -> dict[str, str]:
    """What a reader needs to know about the run: base model, data, profile, policy file, and
    which tests decide and what their unit is (keys read differently from items), and the family."""
    gate = settings.thresholds.gate
    unit = "items" if gate.resample == "item" else "sample keys"
    return {
        "base model": str(settings.base_model),
        "data source": settings.evaluation.data.describe(),
        "profile": settings.evaluation.profile_name,
        "thresholds": str(settings.thresholds_path),
        "engine": settings.evaluation.engine.describe(),
        "tests": (
            "exact score test for paired 0/1 items, else a delete-one jackknife t over "
            f"{unit}; score intervals: bootstrap, {gate.bootstrap_resamples} resamples, seed {gate.seed}"
        ),
        "family": settings.thresholds.family_line().removeprefix("trustgate: "),
    }


def _without_scores_of_no_answers(table: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """summary.json: a cell with no answers has score null (its number stays, named for what it is)."""
    return {
        model: {
            column: {**cell, "score": None, "score_of_non_answers": cell["score"]} if cell["no_answers"] else cell
            for column, cell in row.items()
        }
        for model, row in table.items()
    }


def _finite(value: Any) -> Any:
    """NaN/inf (an interval no resample could score) become null, so summary.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
