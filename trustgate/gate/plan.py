"""The pre-registered plan: before anything is generated, what each dimension's check will run on
and the smallest drop it can detect, at the planning disagreement rate (10% of items change)."""

from __future__ import annotations

from typing import Any

from trustgate.dimensions.registry import OVERALL, all_dimensions
from trustgate.gate import kernel
from trustgate.gate.sizing import planning_df, planning_units
from trustgate.util.errors import TrustgateError


def plan_lines(settings: Any) -> list[str]:
    """One line per dimension: items and sample keys at this profile and limit, margin, and the drop
    the overall check detects with 80% power if 10% of its units change (the binary planning model
    over the test's units: sample keys where whole keys are resampled, since a key's items move
    together, and the t quantile at the jackknife's degrees of freedom; `sizing.planning_units`,
    `sizing.planning_df`). After the run each verdict line gives the observed share
    of changed items ("flips") and the detectable drop at it."""
    from trustgate.evaluation.evaluator import Evaluator

    evaluator = Evaluator(settings.evaluation)
    lines = []
    for name, dimension in all_dimensions().items():
        policy = settings.thresholds.policy(name, None, judged_alone=True, profile=settings.evaluation.profile_name)
        items = keys = 0
        missing, left_out, per_scenario = [], [], []
        for scenario in dimension.scenarios:
            if evaluator.left_out(dimension, scenario):
                left_out.append(scenario)
                continue
            try:
                scenario_items = len(evaluator.items_at(dimension, scenario))
                scenario_keys = evaluator.key_count(dimension, scenario)
            except TrustgateError:
                missing.append(scenario)
                continue
            items, keys = items + scenario_items, keys + scenario_keys
            per_scenario.append(planning_units(scenario_items, scenario_keys, policy.resample))
        if not items:
            lines.append(f"trustgate plan: {name}/{OVERALL}: no data")
            continue
        units = sum(per_scenario)
        df = planning_df(per_scenario, policy.resample)
        detectable = float(kernel.detectable_drop(units, policy.margin, policy.alpha, df=df))
        can = f"detects {detectable:.1f} points" if detectable == detectable else "cannot detect any drop"
        if df == 0:
            can += (
                f" (a jackknife decides from {kernel.MIN_JACKKNIFE_UNITS} sample keys, "
                f"{kernel.MIN_UNITS_PER_STRATUM} in every scenario)"
            )
        gaps = f" ({len(missing)} scenarios without data)" if missing else ""
        if left_out:
            gaps += f" (left out by the profile: {', '.join(left_out)})"
        lines.append(
            f"trustgate plan: {name}: {items} items in {keys} sample keys{gaps}; margin {policy.margin:.1f}; "
            f"{can} at {kernel.PLANNING_DISAGREEMENT:.0%} flips of its {units} units (80% power, one-sided "
            f"{policy.alpha:.3%})"
        )
    return lines
