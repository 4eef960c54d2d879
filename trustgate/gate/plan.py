"""The pre-registered plan: before anything is generated, what each dimension's check will run on
and the smallest drop it can detect, at the planning disagreement rate (10% of items change)."""

from __future__ import annotations

from typing import Any

from trustgate.dimensions.registry import OVERALL, all_dimensions
from trustgate.gate import kernel
from trustgate.util.errors import TrustgateError


def plan_lines(settings: Any) -> list[str]:
    """One line per dimension: items and sample keys at this profile and limit, margin, and the drop
    the overall check detects with 80% power if 10% of its items change (the binary-item planning
    model, items independent; sample keys that move together detect less). After the run each
    verdict line gives the observed share of changed items ("flips") and the detectable drop at it."""
    from trustgate.evaluation.evaluator import Evaluator

    evaluator = Evaluator(settings.evaluation)
    lines = []
    for name, dimension in all_dimensions().items():
        policy = settings.thresholds.policy(name, None, judged_alone=True, profile=settings.evaluation.profile_name)
        items = keys = 0
        missing = []
        for scenario in dimension.scenarios:
            try:
                items += len(evaluator.items_at(dimension, scenario))
                keys += evaluator.key_count(dimension, scenario)
            except TrustgateError:
                missing.append(scenario)
        if not items:
            lines.append(f"trustgate plan: {name}/{OVERALL}: no data")
            continue
        detectable = float(kernel.detectable_drop(items, policy.margin, policy.alpha))
        can = f"detects {detectable:.1f} points" if detectable == detectable else "cannot detect any drop"
        gaps = f" ({len(missing)} scenarios without data)" if missing else ""
        lines.append(
            f"trustgate plan: {name}: {items} items in {keys} sample keys{gaps}; margin {policy.margin:.1f}; "
            f"{can} at {kernel.PLANNING_DISAGREEMENT:.0%} flips (80% power, one-sided {policy.alpha:.3%})"
        )
    return lines
