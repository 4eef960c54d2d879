"""The ci profile's sizes by detection per second of generation (trustgate/gate/sizing.py).

    .venv/bin/python benchmarks/ci_sizing.py --measure EVENTS.jsonl [EVENTS.jsonl ...]
    .venv/bin/python benchmarks/ci_sizing.py [--budget SECONDS] [--write]

`--measure` reads the event log of a main-job run made with `--trust-one-scenario-at-a-time`
(TRUSTGATE_EVENTS=... pytest --trust-one-scenario-at-a-time; by default a dimension's scenarios
share engine calls and cannot be timed one by one): every `generate` event names its scenario,
the prompts it generated and the engine's seconds for them;
seconds per item per scenario (summed over the run's two models) go to benchmarks/data/ci_seconds.json
with the commit, date and load average. Without it: the items of each candidate limit (the
embedded probe sets, in the gate's hashed order) and those seconds give each dimension's cost; the
budget (`budget_seconds` of [profiles.ci], or --budget) is allocated by `sizing.allocate`, and a
table is printed: limit, items, seconds, detectable drop, power against a gross drop
(`sizing.TARGET_MARGINS` times the margin). `--write`
puts the limits and the table into thresholds.toml (tests/test_sizing.py checks they agree).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from trustgate.data import TrustData  # noqa: E402
from trustgate.dimensions.registry import all_dimensions  # noqa: E402
from trustgate.evaluation.evaluator import keys_in_order  # noqa: E402
from trustgate.gate.policy import Thresholds, load_thresholds  # noqa: E402
from trustgate.gate.sizing import (  # noqa: E402
    EXPENSIVE_FACTOR,
    TARGET_MARGINS,
    DimensionCost,
    allocate,
    candidate_costs,
)

MEASURED = REPO_ROOT / "benchmarks" / "data" / "ci_seconds.json"
THRESHOLDS = REPO_ROOT / "thresholds.toml"
PROFILE = "ci"
BEGIN, END = "# ci-sizing:begin", "# ci-sizing:end"


def measure(event_logs: list[Path]) -> dict:
    """Seconds per generated item per scenario, summed over the models of the run."""
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    items: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in event_logs:
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            if event.get("event") == "generate" and event.get("scenarios"):
                raise SystemExit(
                    f"{path}: scenarios {event['scenarios']} were generated together, so the log cannot time "
                    "them one by one; measure on a run with --trust-one-scenario-at-a-time"
                )
            if event.get("event") == "generate" and event.get("generated"):
                seconds[event["scenario"]][event["model"]] += event["seconds"]
                items[event["scenario"]][event["model"]] += event["generated"]
    per_item = {
        scenario: round(sum(seconds[scenario][m] / items[scenario][m] for m in items[scenario]), 4)
        for scenario in sorted(items)
    }
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    return {
        "what": "engine seconds per generated item, summed over the run's models (dense + one variant)",
        "measured": time.strftime("%Y-%m-%d"),
        "commit": commit.stdout.strip(),
        "machine": f"{os.cpu_count()} CPUs",
        "load_average_after": round(os.getloadavg()[0], 2),
        "models": sorted({m for scenario in items.values() for m in scenario}),
        "seconds_per_item": per_item,
    }


def dimension_costs(thresholds: Thresholds, per_item: dict[str, float]) -> list[DimensionCost]:
    data = TrustData("embedded")
    costs = []
    for name, dimension in all_dimensions().items():
        keys_per_scenario: dict[str, list[int]] = {}
        seconds: dict[str, float] = {}
        for scenario in dimension.scenarios:
            loaded = dimension.load(data, scenario).items
            counts: dict[str, int] = defaultdict(int)
            for item in loaded:
                counts[item.sample_key or item.id] += 1
            keys_per_scenario[scenario] = [counts[key] for key in keys_in_order(loaded)]
            label = f"{name}/{scenario}"
            if label not in per_item:
                raise SystemExit(f"{MEASURED}: no measured seconds for {label}; rerun --measure on a full main-job log")
            seconds[scenario] = per_item[label]
        policy = thresholds.policy(name, None, judged_alone=True, profile=PROFILE)
        costs.append(candidate_costs(name, policy.margin, policy.alpha, keys_per_scenario, seconds, policy.resample))
    return costs


def table(costs: list[DimensionCost], limits: dict[str, int], budget: float, measured: dict) -> list[str]:
    lines = [
        BEGIN,
        f"# Sized by benchmarks/ci_sizing.py for {budget:.0f} s of generation (dense + one variant) on the",
        f"# seconds per item measured {measured['measured']} at {measured['commit']} ({measured['machine']}):",
        "# the budget goes where it buys the most power per second against a gross drop "
        f"({TARGET_MARGINS:.0f}x the margin)",
        "# (planning model: 10% of units change; units are sample keys, whose items move together;",
        "# docs/calibration.md measures the real power). A dimension that detects nothing at any",
        "# affordable size keeps its floor (1 sample key per scenario or more, 10 items in all): a smoke",
        "# check. Power is 0 where the jackknife cannot decide (under 10 keys, or a scenario of one key).",
        "#   dimension            limit  items  keys  seconds  detects (80% power)  "
        f"power at {TARGET_MARGINS:.0f}x margin",
    ]
    total = 0.0
    for cost in costs:
        index = cost.limits.index(limits[cost.name])
        total += cost.seconds[index]
        detectable = cost.detectable(index)
        detects = f"{detectable:5.1f} points" if detectable == detectable else "nothing     "
        lines.append(
            f"#   {cost.name:<20} {limits[cost.name]:>5}  {cost.items[index]:>5}  {cost.units[index]:>4}  "
            f"{cost.seconds[index]:>7.0f}  "
            f"{detects:<19}  {cost.powers[index]:.2f}"
        )
    lines.append(f"#   total                                    {total:>7.0f} s")
    for cost in costs:
        if cost.left_out:
            lines.append(f"#   {cost.name}: left out {', '.join(cost.left_out)} (items cost "
                         f"{EXPENSIVE_FACTOR:.0f}x or more its cheapest scenario's; release runs them)")  # fmt: skip
    lines.append(END)
    return lines


def left_out_line(left_out: tuple[str, ...]) -> str:
    """The TOML line for the scenarios the profile does not run."""
    return "left_out = [" + ", ".join(json.dumps(scenario) for scenario in left_out) + "]"


def write(costs: list[DimensionCost], limits: dict[str, int], lines: list[str], budget: float) -> None:
    text = THRESHOLDS.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    text = text[:start] + "\n".join(lines) + text[end:]
    text, count = re.subn(
        r"(\[profiles\.ci\]\n(?:(?!\[)[^\n]*\n)*?)budget_seconds = [\d.]+", rf"\g<1>budget_seconds = {budget:.1f}", text
    )
    if count != 1:
        raise SystemExit(f"{THRESHOLDS}: expected one `budget_seconds = ...` in [profiles.{PROFILE}]")
    for cost in costs:
        section = rf"(\[profiles\.{PROFILE}\.dimensions\.{cost.name}\]\n(?:(?!\[)[^\n]*\n)*?)"
        text = re.sub(section + r"(?:scenario_limits|left_out) = [^\n]*\n", r"\g<1>", text)
        held = "\n" + left_out_line(cost.left_out) if cost.left_out else ""
        line = f"limit = {limits[cost.name]}"

        def limit_line(match: re.Match, line: str = line, held: str = held) -> str:
            comment = match.group(2)
            return match.group(1) + (line.ljust(24) + comment if comment else line) + held

        text, count = re.subn(section + r"limit = \d+ *([^\n]*)", limit_line, text)
        if count != 1:
            raise SystemExit(f"{THRESHOLDS}: expected one `limit = ...` in [profiles.{PROFILE}.dimensions.{cost.name}]")
    THRESHOLDS.write_text(text, encoding="utf-8")


def sized(thresholds: Thresholds, measured: dict, budget: float) -> tuple[list[DimensionCost], dict[str, int]]:
    costs = dimension_costs(thresholds, measured["seconds_per_item"])
    return costs, allocate(costs, budget)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", type=Path, nargs="+", help="event logs of a main-job run")
    parser.add_argument("--budget", type=float, default=None, help="seconds (default: budget_seconds of [profiles.ci])")
    parser.add_argument("--write", action="store_true", help="write the limits and the table into thresholds.toml")
    args = parser.parse_args()
    if args.measure:
        MEASURED.write_text(json.dumps(measure(args.measure), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {MEASURED}")
    measured = json.loads(MEASURED.read_text(encoding="utf-8"))
    thresholds = load_thresholds(THRESHOLDS)
    budget = args.budget or thresholds.profiles[PROFILE].budget_seconds
    if budget is None:
        raise SystemExit("no budget: pass --budget SECONDS or set budget_seconds in [profiles.ci]")
    costs, limits = sized(thresholds, measured, budget)
    lines = table(costs, limits, budget, measured)
    print("\n".join(line.removeprefix("# ") for line in lines[1:-1]))
    if args.write:
        write(costs, limits, lines, budget)
        print(f"wrote the limits and the table into {THRESHOLDS}")


if __name__ == "__main__":
    main()
