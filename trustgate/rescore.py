"""Re-score stored generations without a model: `python -m trustgate.rescore RECORDS_DIR [--check]`,
or DecodingTrust's own: `python -m trustgate.rescore --decodingtrust DATA_DIR --dt-model MODEL --out OUT`.

RECORDS_DIR is a run's records folder (<report dir>/records, or any folder below it): JSONL
files written by trustgate.evaluation.records, one per (model, dimension, scenario), header line first.
Each file's responses are parsed again with the dimension's current `score_items` and
`metric`; the table shows the stored score beside the recomputed one, per scenario and per
dimension (combined over the scenarios present). A parser change shows up as a difference;
`--check` makes any difference larger than `--tolerance` exit with status 1. A file that
cannot be re-scored (unknown dimension, not a records file) exits with status 2.

With --decodingtrust, DATA_DIR is a DecodingTrust data/ folder holding its stored generations;
every generation file of MODEL that DecodingTrust's scorers read is paired with its inputs and
scored by the dimension's own scorer (trustgate.evaluation.decodingtrust): OUT gets records/,
codes.json and summary.json, and the table is printed. A missing or unreadable file, a count
mismatch or an unknown model ends with one line naming it and status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from trustgate.evaluation.records import record_files
from trustgate.evaluation.rescore import Rescored, close, combined, rescore_file
from trustgate.util.errors import TrustgateError


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trustgate.rescore", description=__doc__.splitlines()[0])
    parser.add_argument(
        "records", type=Path, nargs="?", help="folder of records JSONL files (e.g. trustgate-report/records)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a recomputed score differs from the stored one"
    )
    parser.add_argument("--tolerance", type=float, default=1e-9, help="allowed absolute difference in points")
    group = parser.add_argument_group("DecodingTrust's stored generations")
    group.add_argument("--decodingtrust", type=Path, metavar="DATA_DIR", help="a DecodingTrust data/ folder")
    group.add_argument("--dt-model", metavar="MODEL", help="the model whose generations to score, e.g. gpt-4-0314")
    group.add_argument("--out", type=Path, metavar="OUT", help="where records/, codes.json, summary.json go")
    group.add_argument("-k", dest="dimensions", action="append", metavar="DIMENSION", help="only this dimension")
    return parser


def _decodingtrust(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from trustgate.evaluation.decodingtrust import rescore_decodingtrust

    if args.records is not None or not args.dt_model or not args.out:
        parser.error("--decodingtrust DATA_DIR needs --dt-model MODEL and --out OUT, and no RECORDS_DIR")
    try:
        result = rescore_decodingtrust(args.decodingtrust, args.dt_model, args.out, args.dimensions)
    except TrustgateError as exc:
        print(f"error: {exc}")
        return 2
    print(result.table())
    print(f"\nrecords, codes.json and summary.json written to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.decodingtrust is not None:
        return _decodingtrust(args, parser)
    if args.records is None:
        parser.error("pass RECORDS_DIR, or --decodingtrust DATA_DIR --dt-model MODEL --out OUT")
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
