"""Gate wall time cold and warm, peak memory, and resume after a kill.

    .venv/bin/python benchmarks/gate.py [--model gptq4+cal16] [--limit 4] [-k stereotype]
        [--reuse-checkpoints ~/.cache/trustgate]

Runs the real gate (`pytest trust_tests`, dense + one variant) three ways in a fresh cache:
cold (nothing cached), warm (the same command again: generations and checkpoints cached), and
killed half-way then rerun (the rerun must generate only what the killed run had not committed).
After the cold run it prints the engine's figures from the event log (prefill and decode seconds,
padding share of prefill, rows per decode step) and `gate FLOP share: <s>`: real prompt positions
and generated tokens x 2 x parameters over the cold run's wall time x the measured torch.mm rate
(the gate runs on the CPU; `benchmarks/prefill_replay.py` replays the main job's prompts).
`--looks-ab` instead runs cold twice, each in its own fresh cache: without early stopping
(a copy of thresholds.toml with `looks = [1.0]`) and with the repository's looks; it prints
both wall times, the prompts each generated and their ratio.
`--reuse-checkpoints` hard-links converted base models and compressed checkpoints from another
cache, so the cold run measures evaluation rather than compression. `--from-log EVENTS --wall S`
prints the same figures for a run made elsewhere (the README's main job with $TRUSTGATE_EVENTS set),
compression included when it ran. Peak memory is the largest
summed RSS of the pytest process and its children (compression workers included), sampled
every 0.1 s. $TRUSTGATE_EVENTS records each model load and each generation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.engine import matmul_flops  # noqa: E402


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def cached_rows(cache: Path) -> int:
    path = cache / "generations.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])
    except sqlite3.Error:
        return 0


def run_gate(
    args: argparse.Namespace, cache: Path, label: str, kill_at_rows: int | None = None, extra: tuple[str, ...] = ()
) -> dict:
    report = cache.parent / f"report-{label}"
    events = cache.parent / f"events-{label}.jsonl"
    command = [sys.executable, "-m", "pytest", "trust_tests", "-p", "no:cacheprovider", "-q"]
    command += ["--model", args.model, "-k", args.k, "--trust-cache-dir", str(cache)]
    command += ["--trust-limit", str(args.limit)] if args.limit > 0 else []
    command += ["--trust-report", str(report), "--trust-calibration", "fallback"]
    if args.trust_data:
        command += ["--trust-data", args.trust_data]
    command += list(extra)
    env = {**os.environ, "TRUSTGATE_CACHE": str(cache), "TRUSTGATE_EVENTS": str(events), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    log = cache.parent / f"output-{label}.log"  # a file, not a pipe: a full run's output would fill a pipe
    log_handle = open(log, "w")  # noqa: SIM115 (closed below, after the child exits)
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_handle, stderr=subprocess.STDOUT)
    watched, peak, killed_with = psutil.Process(child.pid), 0, None
    while child.poll() is None:
        peak = max(peak, tree_rss(watched))
        if kill_at_rows is not None and killed_with is None and cached_rows(cache) >= kill_at_rows:
            killed_with = cached_rows(cache)
            for member in [*watched.children(recursive=True), watched]:
                member.send_signal(signal.SIGKILL)
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    log_handle.close()
    output = log.read_text(errors="replace")
    lines = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
    streams = [e for e in lines if e["event"] == "stream"]
    return {
        "streams": streams,
        "compressions": [e for e in lines if e["event"] == "compress"],
        "label": label,
        "seconds": seconds,
        "peak_rss_mb": peak / 2**20,
        "returncode": child.returncode,
        "generated": sum(e.get("generated", 0) for e in lines if e["event"] == "generate"),
        "loads": sum(e["event"] == "load" for e in lines),
        "rows_when_killed": killed_with,
        "rows_after": cached_rows(cache),
        "tail": output.strip().splitlines()[-3:],
    }


def show(result: dict) -> None:
    print(
        f"{result['label']}: {result['seconds']:.1f}s wall, peak RSS {result['peak_rss_mb']:.0f} MB, "
        f"exit {result['returncode']}, prompts generated {result['generated']}, model loads {result['loads']}, "
        f"cached generations {result['rows_after']}"
        + (f" (killed at {result['rows_when_killed']})" if result["rows_when_killed"] is not None else "")
    )
    for line in result["tail"]:
        print(f"    {line}")


def show_flop_share(result: dict, matmul_rate: float) -> None:
    """Useful work over what the wall time could have computed: real prompt positions and
    generated tokens, 2 x parameters each, against the measured torch.mm rate. The engine's
    per-stream figures (the event log) give the positions and its own seconds."""
    streams = result["streams"]
    if not streams:
        print("gate FLOP share: no engine streams in the event log (everything cached?)")
        return
    useful = sum((e["prompt_positions"] + e["new_tokens"]) * 2 * e["parameters"] for e in streams)
    engine_seconds = sum(e["prefill_seconds"] + e["decode_seconds"] for e in streams)
    prefill = sum(e["prompt_positions"] + e["padding_positions"] for e in streams)
    padding = sum(e["padding_positions"] for e in streams)
    steps = sum(e["decode_steps"] for e in streams)
    rows = sum(e["decode_rows"] for e in streams)
    # One `stream` event per engine call; it names how many streams (prefixes) that call decoded.
    count = sum(e.get("streams", 1) for e in streams)
    prefill_seconds = sum(e["prefill_seconds"] for e in streams)
    print(f"engine: {count} streams in {len(streams)} calls, prefill {prefill_seconds:.1f}s, "
          f"decode {sum(e['decode_seconds'] for e in streams):.1f}s, {steps} decode steps, "
          f"{rows / max(1, steps):.1f} rows per step")  # fmt: skip
    print(f"prefill padding: {100 * padding / max(1, prefill):.1f}% of {prefill} prefill positions")
    print(f"engine FLOP share: {useful / (engine_seconds * matmul_rate):.3f} (over the engine's own seconds)")
    for done in result["compressions"]:
        # llm-compressor's sequential pipeline: two passes of every layer over the calibration windows.
        work = 2 * done["calibration_positions"] * 2 * done["parameters"]
        stages = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in done["stage_seconds"].items())
        calibrate = done["stage_seconds"].get("calibrate", float("nan")) * matmul_rate
        whole = sum(done["stage_seconds"].values()) * matmul_rate
        print(f"compression {done['variant']}: {stages}; FLOP share {work / calibrate:.3f} of the "
              f"calibration stage, {work / whole:.3f} of the whole")  # fmt: skip
    wall = result["seconds"]
    print(f"gate FLOP share: {useful / (wall * matmul_rate):.3f} "
          f"({useful / 1e12:.1f} TFLOP useful in {wall:.0f}s wall at {matmul_rate / 1e9:.0f} GFLOP/s)")  # fmt: skip


def fresh_cache(root: Path, name: str, reuse: Path | None) -> Path:
    cache = root / name
    cache.mkdir(parents=True)
    for part in ("base-models", "checkpoints") if reuse else ():
        if (reuse / part).is_dir():
            shutil.copytree(reuse / part, cache / part, copy_function=os.link, ignore=shutil.ignore_patterns("*.lock"))
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gptq4+cal16")
    parser.add_argument("--limit", type=int, default=4, help="0: the profile's own sizes (a full gate run)")
    parser.add_argument("-k", default="stereotype", help='"" runs every dimension')
    parser.add_argument("--trust-data", default=None)
    parser.add_argument("--reuse-checkpoints", type=Path, default=None)
    parser.add_argument("--skip-resume", action="store_true")
    parser.add_argument("--looks-ab", action="store_true", help="cold without and with early stopping")
    parser.add_argument("--from-log", type=Path, default=None, metavar="EVENTS",
                        help="no run: the figures of a run already made ($TRUSTGATE_EVENTS), with --wall")  # fmt: skip
    parser.add_argument("--wall", type=float, default=None, help="that run's wall seconds")
    args = parser.parse_args()
    if args.from_log:
        if args.wall is None:
            raise SystemExit("--from-log needs --wall SECONDS (the run's wall time)")
        lines = [json.loads(line) for line in args.from_log.read_text().splitlines()]
        result = {"seconds": args.wall, "streams": [e for e in lines if e["event"] == "stream"],
                  "compressions": [e for e in lines if e["event"] == "compress"]}  # fmt: skip
        show_flop_share(result, matmul_flops("cpu", torch.float32))
        return
    load = os.getloadavg()
    print(f"gate: dense + {args.model}, -k {args.k}, --limit {args.limit}; load average {load[0]:.2f} at start")
    root = Path(tempfile.mkdtemp(prefix="trustgate-gate-bench-"))
    if args.looks_ab:
        looks_ab(args, root)
        return
    cache = fresh_cache(root, "cache", args.reuse_checkpoints)
    rate = matmul_flops("cpu", torch.float32)
    cold = run_gate(args, cache, "cold")
    show(cold)
    show_flop_share(cold, max(rate, matmul_flops("cpu", torch.float32)))
    warm = run_gate(args, cache, "warm")
    show(warm)
    peak = max(cold["peak_rss_mb"], warm["peak_rss_mb"])
    print(f"cold/warm: {cold['seconds'] / warm['seconds']:.1f}x; peak RSS {peak:.0f} MB")
    if not args.skip_resume:
        resume_cache = fresh_cache(root, "resume-cache", args.reuse_checkpoints)
        killed = run_gate(args, resume_cache, "killed", kill_at_rows=max(1, cold["rows_after"] // 2))
        show(killed)
        rerun = run_gate(args, resume_cache, "rerun")
        show(rerun)
        print(
            f"resume: killed run committed {killed['rows_after']} of {cold['rows_after']} generations; "
            f"the rerun generated {rerun['generated']} (expected {cold['rows_after'] - killed['rows_after']})"
        )
    print(f"load average {os.getloadavg()[0]:.2f} at end; work folder {root}")


def looks_ab(args: argparse.Namespace, root: Path) -> None:
    """The same cold run without early stopping and with it; the figures docs/performance.md quotes."""
    import re

    source = (REPO_ROOT / "thresholds.toml").read_text(encoding="utf-8")
    without, count = re.subn(r"(?m)^looks = .*$", "looks = [1.0]", source)
    if count != 1:
        raise SystemExit("thresholds.toml: expected one `looks = ...` line in [gate]")
    no_looks = root / "thresholds-no-looks.toml"
    no_looks.write_text(without, encoding="utf-8")
    off = run_gate(args, fresh_cache(root, "cache-no-looks", args.reuse_checkpoints), "no looks",
                   extra=("--trust-thresholds", str(no_looks)))  # fmt: skip
    show(off)
    on = run_gate(args, fresh_cache(root, "cache-looks", args.reuse_checkpoints), "looks")
    show(on)
    print(
        f"early stopping: wall {on['seconds']:.0f}s vs {off['seconds']:.0f}s ({on['seconds'] / off['seconds']:.2f}x), "
        f"prompts generated {on['generated']} vs {off['generated']}; load average {os.getloadavg()[0]:.2f} at end"
    )


if __name__ == "__main__":
    main()
