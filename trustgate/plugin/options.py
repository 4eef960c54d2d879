"""The gate's command-line options (pytest group "trustgate"): one table, each flag declared once.

trustgate's plugin loads in every pytest run of the environment, beside other plugins, so every
option carries the `--trust-` prefix (pytest-profiling owns `--profile`, pytest-timeout
`--timeout`, ...), except the design card's own `--model`. Each entry's `type` is an argparse
validator: a value that cannot be right (a negative count, NaN minutes, a port above 65535, a
FIFO as the policy file) stops pytest with a usage error (exit 4) before anything runs. Rules
that involve several options, the policy file's contents or the machine's state live in
`trustgate.plugin.settings`.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DEFAULT_VARIANT = "gptq4"
DEFAULT_THRESHOLDS = "thresholds.toml"  # at the repository root (plugin.repository.REPOSITORY)
DEFAULT_REPORT = "trustgate-report"
ENGINES = ("transformers", "vllm", "openai")
CALIBRATION_SOURCES = ("auto", "c4", "fallback")
DEVICES = "auto, cpu, cuda or cuda:N"


def _invalid(value: str, problem: str, fix: str) -> argparse.ArgumentTypeError:
    """argparse prints `argument --trust-x: <this>`: the value, what is wrong, the fix."""
    return argparse.ArgumentTypeError(f"{value!r} {problem}; {fix}")


def _count(text: str, minimum: int, fix: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _invalid(text, "is not a whole number", fix) from None
    if value < minimum:
        raise _invalid(text, "is negative" if minimum == 0 else "must be positive", fix)
    return value


def positive_int(text: str) -> int:
    return _count(text, 1, "pass a whole number of at least 1")


def items_per_scenario(text: str) -> int:
    return _count(text, 0, "pass 0 (all items) or a positive count, e.g. 48")


def _finite(text: str, fix: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _invalid(text, "is not a number", fix) from None
    if not math.isfinite(value):
        raise _invalid(text, "is not a finite number", fix)
    return value


def positive_minutes(text: str) -> float:
    value = _finite(text, "pass a positive number of minutes, e.g. 50")
    if value <= 0:
        raise _invalid(text, "must be positive", "pass a positive number of minutes, e.g. 50")
    return value


def percent(text: str) -> float:
    value = _finite(text, "pass 0 or more percent, e.g. 100")
    if value < 0:
        raise _invalid(text, "must be 0 or more percent", "pass e.g. 100")
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in choices:
            raise _invalid(text, "is not offered", f"choose {', '.join(choices)}")
        return text

    check.__name__ = "choice"
    return check


def device(text: str) -> str:
    from trustgate.models.loading import DEVICE  # a regular expression; no torch

    if not DEVICE.fullmatch(text):
        raise _invalid(text, "is not a device", f"choose {DEVICES}")
    return text


def regular_file(text: str) -> str:
    """A file to read: not a folder, not a FIFO or device (reading one blocks forever)."""
    path = Path(os.path.expanduser(text))
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _invalid(text, f"cannot be read ({exc.strerror or exc})", "pass an existing file") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, socket or device)"
        raise _invalid(text, f"is {kind}", "pass a regular file")
    return text


def text_file(text: str) -> str:
    """A regular file holding UTF-8 text (the policy file)."""
    regular_file(text)
    try:
        Path(os.path.expanduser(text)).read_bytes().decode("utf-8")
    except OSError as exc:
        raise _invalid(text, f"cannot be read ({exc.strerror or exc})", "pass a readable file") from None
    except UnicodeDecodeError as exc:
        raise _invalid(text, f"is not UTF-8 text (byte {exc.start})", "save it as UTF-8 TOML") from None
    return text


def folder(text: str) -> str:
    """A folder trustgate writes into: it may not exist yet, but it may not be a file."""
    path = Path(os.path.expanduser(text))
    if path.exists() and not path.is_dir():
        raise _invalid(text, "is a file, not a folder", "pass a folder path (it is created when missing)")
    return text


def executable(text: str) -> str:
    path = Path(os.path.expanduser(text))
    if not path.is_file():
        raise _invalid(text, "is no such interpreter", "run `bash scripts/setup.sh --with-vllm` or pass its python")
    if not os.access(path, os.X_OK):
        raise _invalid(text, "is not executable", f"chmod +x {text} or pass the python of a vLLM environment")
    return text


def endpoint(text: str) -> str:
    """`[MODEL=]URL[#SERVED]` with an http(s) URL and, when given, a port from 1 to 65535."""
    from urllib.parse import urlsplit

    model, sep, url = text.partition("=")
    if not sep or "://" in model:
        url = text
    fix = "pass e.g. http://127.0.0.1:8000 or gptq4=http://127.0.0.1:8001"
    parts = urlsplit(url.partition("#")[0])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(text, "is not an http(s) URL", fix)
    try:
        port = parts.port
    except ValueError:
        raise _invalid(text, "has a port outside 1-65535", fix) from None
    if port == 0:
        raise _invalid(text, "has a port outside 1-65535", fix)
    return text


@dataclass(frozen=True)
class Option:
    """One trustgate flag. `dest` is `trust_` + the flag's name after its prefix."""

    flag: str
    help: str
    type: Callable[[str], object] | None = None  # argparse validator; None for switches
    default: object = None
    metavar: str | None = None
    action: str = "store"  # "store", "append" (repeatable) or "store_true" (a switch)

    @property
    def dest(self) -> str:
        name = self.flag.removeprefix("--").removeprefix("trust-")
        return "trust_" + name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("--model", f"variant to gate (repeatable): gptq3/4/8, awq3/4/8, wanda-2:4, sparsegpt-50, "
           f"magnitude-4:8, ...@seedN+calN, dense, recipe:PATH, or a checkpoint folder/hub id; "
           f"default {DEFAULT_VARIANT}", str, None, "VARIANT", "append"),
    Option("--trust-base-model", "dense base model: hub id or local folder; default the embedded "
           "SmolLM2-135M-Instruct", str, None, "ID_OR_PATH"),
    Option("--trust-data", "DecodingTrust data/ folder, or 'hub'; default the embedded probe sets", str, None,
           "PATH|hub"),
    Option("--trust-limit", "sample keys per scenario (overrides the profile's limits; 0 = all)",
           items_per_scenario, None, "N"),
    Option("--trust-profile", "evaluation sizes from thresholds.toml: ci (small, default) or release "
           "(DecodingTrust sizes)", str, "ci", "NAME"),
    Option("--trust-thresholds", f"gate policy file (default {DEFAULT_THRESHOLDS} at the repository root)",
           text_file, None, "PATH"),
    Option("--trust-device", f"where models run: {DEVICES} (default auto)", device, "auto", "DEVICE"),
    Option("--trust-cache-dir", "checkpoints and generations cache (default $TRUSTGATE_CACHE or "
           "~/.cache/trustgate)", folder, None, "PATH"),
    Option("--trust-report", f"folder for records (JSONL), summary.json/.md and the radar chart "
           f"(default {DEFAULT_REPORT})", folder, DEFAULT_REPORT, "DIR"),
    Option("--trust-batch-size", "generation batch size (positive)", positive_int, None, "N"),
    Option("--trust-one-scenario-at-a-time", "generate each scenario in an engine call of its own (default: "
           "a dimension's scenarios share decode batches); the event log then times every scenario alone, "
           "as benchmarks/ci_sizing.py --measure needs", action="store_true"),
    Option("--trust-allow-ungated", "a selected check skipped for missing data does not fail the run "
           "(default: it does; per dimension: required = false in thresholds.toml)", action="store_true"),
    Option("--trust-calibration", "calibration text: auto (C4 when online, else the offline fallback), "
           "c4, fallback", one_of(*CALIBRATION_SOURCES), "auto", "SOURCE"),
    Option("--trust-worst-seed", "judge each method given with several @seedN on its worst seed, not the "
           "seed mean (same as thresholds.toml [gate] worst_seed = true)", action="store_true"),
    Option("--trust-remote-code", "allow model repositories to run their own code (off by default)",
           action="store_true"),
    Option("--trust-engine", "what generates: transformers (in-process, default), vllm (a vLLM server per "
           "model, from --trust-vllm-python), openai (an existing OpenAI-compatible endpoint, "
           "--trust-engine-url)", one_of(*ENGINES), "transformers", "ENGINE"),
    Option("--trust-vllm-python", "interpreter with vLLM for --trust-engine vllm (default "
           ".venv-vllm/bin/python of this repository, made by scripts/setup.sh --with-vllm)", executable,
           None, "PATH"),
    Option("--trust-engine-url", "endpoint for --trust-engine openai (repeatable): MODEL is dense or a "
           "--model name (none: every model without its own), SERVED the endpoint's model id when it "
           "serves several", endpoint, None, "[MODEL=]URL[#SERVED]", "append"),
    Option("--trust-tensor-parallel-size", "--trust-engine vllm: GPUs per model, passed to vLLM", positive_int,
           1, "N"),
    Option("--trust-pipeline-parallel-size", "--trust-engine vllm: pipeline stages per model, passed to vLLM",
           positive_int, 1, "N"),
    Option("--trust-max-model-len", "--trust-engine vllm: context length the server allows (default: the "
           "model's own)", positive_int, None, "N"),
    Option("--trust-remedy", "after the gate, for each variant that failed: find the fewest decoder blocks "
           "to keep at 8 bits (quantized) or dense (pruned) so that it passes, confirmed on held-out items; "
           "writes a recipe for --model recipe:PATH (README: Remedy search)", action="store_true"),
    Option("--trust-remedy-probes", "--trust-remedy: compressions to try per variant (default 8)",
           positive_int, 8, "N"),
    Option("--trust-remedy-minutes", "--trust-remedy: minutes per variant for the ranking and the probes; the "
           "confirmation comes after (default 50)", positive_minutes, 50.0, "M"),
    Option("--trust-remedy-max-size", "--trust-remedy: largest size increase over the plain variant, in percent "
           "(default 100)", percent, 100.0, "PERCENT"),
    Option("--trust-remedy-rank-items", "--trust-remedy: items measured per block restored (default 4)",
           positive_int, 4, "N"),
    Option("--trust-remedy-rank-blocks", "--trust-remedy: blocks measured by forward passes, largest free "
           "signal first (default all)", positive_int, None, "N"),
    Option("--trust-remedy-prompt-tokens", "--trust-remedy: a measured prompt keeps its last N tokens "
           "(default 384)", positive_int, 384, "N"),
)  # fmt: skip


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("trustgate", "trustgate: gate a compressed model against its dense base")
    for option in OPTIONS:
        if option.action == "store_true":
            group.addoption(option.flag, dest=option.dest, action="store_true", help=option.help)
        else:
            group.addoption(
                option.flag,
                dest=option.dest,
                action=option.action,
                type=option.type,
                default=option.default,
                metavar=option.metavar,
                help=option.help,
            )


# The unprefixed spellings of earlier releases, which users type from habit: old -> new.
OLD_SPELLINGS = {
    "--" + o.flag.removeprefix("--trust-"): o.flag
    for o in OPTIONS
    if o.flag.startswith("--trust-") and o.flag not in ("--trust-data", "--trust-report", "--trust-remote-code")
}


def refuse_old_spellings(parser: pytest.Parser, args: list[str]) -> None:
    """`--limit 48` that no other plugin claims: say it is now `--trust-limit`, instead of
    argparse's bare "unrecognized arguments". (`--profile` with pytest-profiling installed is
    that plugin's, and left alone.)"""
    _, unknown = parser.parse_known_and_unknown_args(args)
    for arg in unknown:
        name = arg.split("=", 1)[0]
        if name in OLD_SPELLINGS:
            raise pytest.UsageError(
                f"{name}: trustgate's options carry the --trust- prefix since they coexist with other plugins; "
                f"pass {OLD_SPELLINGS[name]}"
            )


def default_of(option: Option) -> object:
    return False if option.action == "store_true" else option.default


def given(config: pytest.Config) -> list[str]:
    """The trustgate options set on the command line to something other than their default."""
    return [o.flag for o in OPTIONS if config.getoption(o.dest) != default_of(o)]
