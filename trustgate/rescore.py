"""Re-score stored generations without a model: `python -m trustgate.rescore RECORDS_DIR [--check]`.

RECORDS_DIR is a run's records folder (<report dir>/records, or any folder below it): JSONL
files written by trustgate.evaluation.records, one per (model, dimension, scenario), header line first.
Each file's responses are parsed again with the dimension's current `score_items` and
`metric`; the table shows the stored score beside the recomputed one, per scenario and per
dimension (combined over the scenarios present). A parser change shows up as a difference;
`--check` makes any difference larger than `--tolerance` exit with status 1. A file that
cannot be re-scored (unknown dimension, not a records file) exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from trustgate.evaluation.records import record_files
from trustgate.evaluation.rescore import Rescored, close, combined, rescore_file


def _print_table(results: Sequence[Rescored], tolerance: float) -> None:
    print(f"{'model':<22} {'dimension/scenario':<40} {'n':>5} {'stored':>9} {'rescored':>9} {'diff':>9} "
          f"{'refusal':>15} {'changed':>7}")  # fmt: skip
    for r in sorted(results, key=lambda r: (r.model, r.dimension, r.scenario)):
        flag = "" if r.matches(tolerance) else "  MISMATCH"
        print(
            f"{r.model:<22} {r.dimension + '/' + r.scenario:<40} {r.n_items:>5} {r.stored_score:>9.4f} "
            f"{r.score:>9.4f} {r.score - r.stored_score:>+9.4f} {f'{r.stored_refusal:.1f}->{r.refusal:.1f}%':>15} "
            f"{r.changed_items:>7}{flag}"
        )
    print()
    for model, name, stored, score, note in combined(results):
        flag = "" if close(stored, score, tolerance) else "  MISMATCH"
        print(f"{model:<22} {name + '/overall':<40} {'':>5} {stored:>9.4f} {score:>9.4f} {score - stored:>+9.4f} "
              f"{note}{flag}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trustgate.rescore", description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path, help="folder of records JSONL files (e.g. trustgate-report/records)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a recomputed score differs from the stored one"
    )
    parser.add_argument("--tolerance", type=float, default=1e-9, help="allowed absolute difference in points")
    args = parser.parse_args(argv)
    if not args.records.is_dir():
        print(f"{args.records}: no such folder; pass a run's records folder (e.g. trustgate-report/records)")
        return 2
    results, errors = [], []
    for path in record_files(args.records):
        try:
            results.append(rescore_file(path))
        except (KeyError, ValueError, TypeError) as exc:
            errors.append(f"{path}: cannot re-score ({exc})")
    if not results and not errors:
        print(f"{args.records}: no records files (*.jsonl) found")
        return 2
    _print_table(results, args.tolerance)
    for error in errors:
        print(error)
    mismatches = [r for r in results if not r.matches(args.tolerance)]
    print(f"\n{len(results)} scenario files re-scored, {len(mismatches)} differ, {len(errors)} could not be read")
    if errors:
        return 2
    return 1 if args.check and mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
