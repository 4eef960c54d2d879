"""The calibration run: conditions, tables, docs/calibration.md's generated section, the last line.

.venv/bin/python benchmarks/gate_calibration.py --simulate [--replicates N] [--write-docs]
.venv/bin/python benchmarks/gate_calibration.py --extract DIR [DIR ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from benchmarks.calibration.pools import DEFAULT_EXTRACT, pools_from_records, read_extract, write_extract
from benchmarks.calibration.population import scenario_models
from benchmarks.calibration.simulate import Condition, DimensionResult, simulate
from trustgate.dimensions.registry import all_dimensions
from trustgate.gate.policy import Thresholds, load_thresholds

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs" / "calibration.md"
BEGIN, END = (
    "<!-- calibration:begin (benchmarks/gate_calibration.py --simulate --write-docs) -->",
    "<!-- calibration:end -->",
)
PLANNING_FLIPS = 0.10
RISE_REPLICATES = 5  # times --replicates for the refusal-rise conditions

CONDITIONS = {
    "ci_item": Condition("at the margin, ci, item churn"),
    "ci_key": Condition("at the margin, ci, key churn", churn_unit="sample_key"),
    "release_item": Condition("at the margin, release, item churn", profile="release"),
    "release_key": Condition("at the margin, release, key churn", profile="release", churn_unit="sample_key"),
    "ci_rise": Condition("refusal rise at the bound, ci", drop=0.0, rise_at_bound=True),
    "release_rise": Condition("refusal rise at the bound, release", profile="release", drop=0.0, rise_at_bound=True),
    "ci_zero": Condition("zero drop, ci", drop=0.0),
    "ci_double": Condition("twice the margin, ci", drop=2.0),
    "release_double": Condition(
        "twice the margin, release, 10% flips", profile="release", drop=2.0, flips=PLANNING_FLIPS
    ),
}


def rate(results: Mapping[str, DimensionResult], verdict: str = "FAIL") -> dict[str, float]:
    return {name: float(np.mean(r.verdicts == verdict)) for name, r in results.items()}


def family_rate(results: Mapping[str, DimensionResult]) -> float:
    """Any blocking FAIL in the run: the replicates of the dimensions are judged side by side."""
    return float(np.mean(np.any([r.verdicts == "FAIL" for r in results.values()], axis=0)))


def mc_bound(alpha: float, replicates: int) -> float:
    """Nominal plus twice its Monte Carlo standard error."""
    return alpha + 2.0 * math.sqrt(alpha * (1.0 - alpha) / replicates)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def tables(results: Mapping[str, Mapping[str, DimensionResult]], replicates: int, family: int) -> str:
    names = list(results["ci_item"])
    any_result = results["ci_item"][names[0]]
    alpha, rise_alpha = any_result.alpha, any_result.rise_alpha
    bound, rise_bound = mc_bound(alpha, replicates), mc_bound(rise_alpha, replicates * RISE_REPLICATES)
    at_margin = ("ci_item", "ci_key", "release_item", "release_key")
    rows = [
        [
            name,
            f"{results['ci_item'][name].true_drop:.2f} / {results['ci_item'][name].margin:.1f}",
            *(_pct(rate(results[c])[name]) for c in at_margin),
        ]
        for name in names
    ]
    rows.append(["**family-wise** (any FAIL)", "", *(f"**{_pct(family_rate(results[c]))}**" for c in at_margin)])
    out = [
        f"Every dimension's true drop exactly at its margin, {replicates} replicates a condition. The gate's "
        f"per-check levels: one-sided {alpha:.3%} for the drop, {rise_alpha:.3%} for the refusal rise "
        f"(family {family} checks); a dimension holds its level when its FAIL rate is at most nominal plus "
        f"twice its Monte Carlo error: {_pct(bound)} (drop), {_pct(rise_bound)} (rise).",
        "",
        _table(
            [
                "dimension",
                "true drop / margin",
                "ci, item churn",
                "ci, key churn",
                "release, item churn",
                "release, key churn",
            ],
            rows,
        ),
        "",
        "A refusal/no-answer rate that rises by exactly the bound (10 points), no score drop, "
        f"{replicates * RISE_REPLICATES} replicates: the share of runs whose refusal test FAILs (nominal "
        f"{rise_alpha:.3%}, bound {rise_bound:.3%}), and any FAIL:",
        "",
        _table(
            ["dimension", "ci: rise FAIL", "release: rise FAIL", "ci: any FAIL", "release: any FAIL"],
            [
                [
                    n,
                    f"{float(np.mean(results['ci_rise'][n].rise_fails)):.3%}",
                    f"{float(np.mean(results['release_rise'][n].rise_fails)):.3%}",
                    f"{rate(results['ci_rise'])[n]:.3%}",
                    f"{rate(results['release_rise'])[n]:.3%}",
                ]
                for n in names
            ],
        ),
        "",
        "Twice the margin: power (FAIL rate) and the share stopped early with a PASS (must be <= 1%); "
        f"at release the variant changes {PLANNING_FLIPS:.0%} of the items (the planning disagreement rate). "
        "Zero drop for comparison.",
        "",
        _table(
            [
                "dimension",
                "zero drop, ci: FAIL",
                "2x, ci: FAIL",
                "2x, ci: early PASS",
                "2x, release: FAIL",
                "2x, release: early PASS",
                "release flips seen",
            ],
            [
                [
                    n,
                    _pct(rate(results["ci_zero"])[n]),
                    _pct(rate(results["ci_double"])[n]),
                    _pct(float(np.mean(results["ci_double"][n].early == "PASS"))),
                    _pct(rate(results["release_double"])[n]),
                    _pct(float(np.mean(results["release_double"][n].early == "PASS"))),
                    _pct(results["release_double"][n].flips),
                ]
                for n in names
            ],
        ),
        "",
        "Sizes (sample keys per scenario): "
        + "; ".join(
            f"{n} ci {sum(results['ci_item'][n].keys.values())}, "
            f"release {sum(results['release_item'][n].keys.values())}"
            for n in names
        )
        + ".",
    ]
    return "\n".join(out)


def rejudge_pool_variant(dimensions: Mapping, thresholds: Thresholds) -> str:
    """The pool's paired variant (gptq4 in the shipped pool: every ci item, no early stopping)
    judged by the kernel at the ci profile's levels: its real verdict under the new tests."""
    from trustgate.dimensions.metrics import AnswerRate
    from trustgate.gate import kernel

    rows = []
    for name, models in dimensions.items():
        if any(m.pool.variant is None for m in models):
            continue
        policy = thresholds.policy(name, None, judged_alone=True, profile="ci")
        units, offset = [], 0
        for m in models:
            units.append(m.pool.cluster + offset)
            offset += int(m.pool.cluster.max()) + 1

        def strata(metric_of, models=models, units=units):
            return [
                kernel.Stratum(metric_of(m), m.dense(), ({**m.design(), **m.pool.variant},), u, m.coefficient)
                for m, u in zip(models, units, strict=True)
            ]

        drop = kernel.paired_evidence(strata(lambda m: m.metric))
        rise = kernel.paired_evidence(strata(lambda m: AnswerRate(m.refusal)))
        dense_score = sum(m.coefficient * m.metric(m.dense()) for m in models)
        changed = sum(int(np.sum(np.abs(m.pool.variant["score"] - m.pool.dense["score"]) > 1e-9)) for m in models)
        flips = changed / sum(m.n for m in models)
        detectable = float(kernel.check_detectable(drop, policy.margin, policy.alpha, flips, dense_score))
        silent = [m.pool.dense["refusal"] for m in models if m.silent]
        answered = 100.0 * (1.0 - np.concatenate(silent).mean()) if silent else 100.0
        decision = kernel.decide(
            policy.rule, drop, rise, policy.margin, policy.max_refusal_rise, policy.levels,
            base_silent=answered < policy.min_base_answer_rate, detectable=detectable,
        )  # fmt: skip
        verdict = str(kernel.verdict(decision))
        low, high = drop.bounds(policy.alpha)
        rise_low, _ = rise.bounds(policy.rise_alpha)
        why = (
            "drop proven"
            if bool(decision.drop_fails)
            else "no-answer rise proven"
            if bool(decision.rise_fails)
            else (
                "too few items"
                if bool(decision.too_few)
                else "base does not answer"
                if bool(decision.base_silent)
                else ""
            )
        )
        rows.append([
            name, f"{float(drop.estimate):+.2f} [{float(low):.2f}, {float(high):.2f}]",
            f"{float(rise.estimate):+.1f} (lower {float(rise_low):.1f})", _pct(flips),
            f"{detectable:.1f}" if detectable == detectable else "none", f"{verdict} {why}".strip(),
        ])  # fmt: skip
    header = ["dimension", "drop [interval]", "no-answer rise", "flips", "detectable", "verdict"]
    return _table(header, rows)


def last_line(results: Mapping[str, Mapping[str, DimensionResult]]) -> str:
    ci = max(family_rate(results["ci_item"]), family_rate(results["ci_key"]))
    release = max(family_rate(results["release_item"]), family_rate(results["release_key"]))
    power = min(rate(results["release_double"]).values())
    return (
        f"calibration: family-wise false alarm at margin {ci:.3f} (ci) {release:.3f} (release); "
        f"power at 2x margin {power:.2f} (release, 10% flips)"
    )


def write_docs(text: str, path: Path = DOCS) -> None:
    document = path.read_text(encoding="utf-8")
    if BEGIN not in document or END not in document:
        raise SystemExit(f"calibration: {path} has no {BEGIN} ... {END} section to replace")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def run_simulation(args: argparse.Namespace) -> None:
    thresholds: Thresholds = load_thresholds(args.thresholds).for_run(
        {d.name: d.scenarios for d in all_dimensions().values()}
    )
    pools = read_extract(args.pool) if not args.records else pools_from_records(args.records, args.dense, args.variant)
    dimensions = scenario_models(pools)
    started = time.perf_counter()
    results = {}
    for key, condition in CONDITIONS.items():
        # the rise test's nominal level is 0.028%: five times the replicates to see it at all
        replicates = args.replicates * (RISE_REPLICATES if condition.rise_at_bound else 1)
        results[key] = simulate(dimensions, thresholds, condition, replicates, seed=args.seed)
        print(
            f"{condition.name}: FAIL "
            + ", ".join(f"{n} {_pct(v)}" for n, v in rate(results[key]).items())
            + f"; family-wise {_pct(family_rate(results[key]))}",
            flush=True,
        )
    text = tables(results, args.replicates, thresholds.family_size())
    variant = next((p.variant_model for p in pools if p.variant_model), None)
    if variant:
        text += f"\n\nThe pool's own {variant} run re-judged by the kernel (ci levels, every ci item):\n\n"
        text += rejudge_pool_variant(dimensions, thresholds)
    print()
    print(text)
    print(
        f"\n({time.perf_counter() - started:.0f} s, seed {args.seed}, "
        f"pool {args.pool if not args.records else args.records})"
    )
    if args.write_docs:
        write_docs(text)
        print(f"wrote {DOCS.relative_to(ROOT)}")
    print(last_line(results))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulate", action="store_true", help="measure the gate by simulation")
    parser.add_argument("--extract", nargs="+", type=Path, help="write the pool from trustgate record folders")
    parser.add_argument("--out", type=Path, default=DEFAULT_EXTRACT)
    parser.add_argument("--records", nargs="+", type=Path, help="simulate from records instead of the shipped pool")
    parser.add_argument("--pool", type=Path, default=DEFAULT_EXTRACT)
    parser.add_argument("--dense", default="dense")
    parser.add_argument("--variant", default="gptq4")
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thresholds", type=Path, default=ROOT / "thresholds.toml")
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/calibration.md's generated section")
    args = parser.parse_args(argv)
    if args.extract:
        write_extract(
            pools_from_records(args.extract, args.dense, args.variant), args.out, "gate_calibration --extract"
        )
        print(f"wrote {args.out}")
    elif args.simulate:
        run_simulation(args)
    else:
        parser.error("give --simulate or --extract DIR")
