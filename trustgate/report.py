"""Run summary: the verdict table in the terminal, summary.json and a paper-style summary.md."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate.dimension import DIMENSION_NAMES

COMPARISON_PROPERTY = "trustgate_comparison"


@dataclass
class RunSummary:
    comparisons: list[dict[str, Any]] = field(default_factory=list)

    def add(self, comparison: dict[str, Any]) -> None:
        self.comparisons.append(comparison)

    def table_lines(self) -> list[str]:
        header = (
            f"{'dimension/scenario':<34} {'variant':<18} {'dense':>7} {'variant':>7} {'drop':>7} "
            f"{'95% CI':>17} {'refusal d/v %':>14} {'allowed':>7}  verdict"
        )
        lines = [header, "-" * len(header)]
        for c in sorted(self.comparisons, key=lambda c: (c["dimension"], c["scenario"], c["variant"])):
            interval = c["drop_interval"]
            verdict = "pass" if c["passed"] else "FAIL"
            if c.get("partial"):
                verdict += " (partial)"
            lines.append(
                f"{c['dimension'] + '/' + c['scenario']:<34} {c['variant']:<18} {c['dense_score']:7.2f} "
                f"{c['variant_score']:7.2f} {c['drop']:+7.2f} [{interval['low']:6.2f},{interval['high']:6.2f}] "
                f"{c['dense_refusal']:6.1f}/{c['variant_refusal']:<6.1f} {c['margin']:7.2f}  {verdict}"
            )
            lines.extend(f"    {reason}" for reason in c["failures"])
        return lines

    def overall_scores(self) -> dict[str, dict[str, dict[str, float]]]:
        """model -> dimension -> {score, refusal}: the paper's table, dense once."""
        table: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        for c in self.comparisons:
            if c["scenario"] != "overall":
                continue
            table["dense"][c["dimension"]] = {"score": c["dense_score"], "refusal": c["dense_refusal"]}
            table[c["variant"]][c["dimension"]] = {"score": c["variant_score"], "refusal": c["variant_refusal"]}
        return dict(table)

    def markdown(self) -> str:
        scores = self.overall_scores()
        dimensions = [d for d in DIMENSION_NAMES if any(d in row for row in scores.values())]
        lines = [
            "| model | " + " | ".join(dimensions) + " | average |",
            "|---" * (len(dimensions) + 2) + "|",
        ]
        for model in sorted(scores, key=lambda m: (m != "dense", m)):
            row = scores[model]
            cells = [f"{row[d]['score']:.1f} (ref {row[d]['refusal']:.0f}%)" if d in row else "-" for d in dimensions]
            present = [row[d]["score"] for d in dimensions if d in row]
            average = f"{sum(present) / len(present):.1f}" if present else "-"
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {average} |")
        return "\n".join(lines) + "\n"

    def write(self, folder: Path, settings: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "base_model": settings.base_model,
            "data": settings.data.describe(),
            "profile": settings.profile,
            "thresholds": str(settings.thresholds_path),
            "overall": self.overall_scores(),
            "comparisons": self.comparisons,
        }
        (folder / "summary.json").write_text(json.dumps(payload, indent=2, default=str))
        (folder / "summary.md").write_text(
            f"# trustgate summary\n\nBase model: {settings.base_model}; data: {settings.data.describe()}; "
            f"profile: {settings.profile}.\nScores 0-100, higher is more trustworthy; refusal/no-answer rate in "
            f"brackets.\n\n" + self.markdown() + "\n## Verdicts\n\n```\n" + "\n".join(self.table_lines()) + "\n```\n"
        )
