"""The gate's command-line options (pytest group "trustgate")."""

from __future__ import annotations

import pytest

from trustgate.plugin.repository import REPOSITORY

DEFAULT_VARIANT = "gptq4"


# --remedy's budgets: (flag, type, default, metavar, help); destination trust_<flag with underscores>
REMEDY_BUDGETS: tuple[tuple[str, type, object, str, str], ...] = (
    ("--remedy-probes", int, 8, "N", "compressions to try per variant (default 8)"),
    ("--remedy-minutes", float, 50.0, "M", "minutes per variant for the ranking and the probes; the confirmation "
     "comes after (default 50)"),
    ("--remedy-max-size", float, 100.0, "PERCENT", "largest size increase over the plain variant (default 100)"),
    ("--remedy-rank-items", int, 4, "N", "items measured per block restored (default 4)"),
    ("--remedy-rank-blocks", int, None, "N", "blocks measured by forward passes, largest free signal first "
     "(default all)"),
    ("--remedy-prompt-tokens", int, 384, "N", "a measured prompt keeps its last N tokens (default 384)"),
)  # fmt: skip

# (option name, destination, default) of every option added below
ADDED: list[tuple[str, str, object]] = []


class _Group:
    """pytest's option group, remembering each option's default (see `given`)."""

    def __init__(self, parser: pytest.Parser) -> None:
        self._group = parser.getgroup("trustgate", "trustgate: gate a compressed model against its dense base")

    def addoption(self, name: str, **kwargs: object) -> None:
        self._group.addoption(name, **kwargs)
        if all(name != added for added, _, _ in ADDED):
            default = kwargs.get("default", False if kwargs.get("action") == "store_true" else None)
            ADDED.append((name, str(kwargs["dest"]), default))


def add_options(parser: pytest.Parser) -> None:
    group = _Group(parser)
    group.addoption(
        "--model",
        action="append",
        dest="trust_models",
        metavar="VARIANT",
        help=f"variant to gate (repeatable): gptq3/4/8, awq3/4/8, wanda-2:4, sparsegpt-50, "
        f"magnitude-4:8, ...@seedN+calN, dense, or a checkpoint path/hub id; default {DEFAULT_VARIANT}",
    )
    group.addoption(
        "--base-model",
        dest="trust_base_model",
        metavar="ID_OR_PATH",
        help="dense base model: hub id or local folder; default the embedded SmolLM2-135M-Instruct",
    )
    group.addoption(
        "--trust-data",
        dest="trust_data",
        metavar="PATH|hub",
        help="DecodingTrust data/ folder, or 'hub'; default the embedded probe sets",
    )
    group.addoption(
        "--limit", dest="trust_limit", type=int, metavar="N", help="items per scenario (overrides the profile; 0 = all)"
    )
    group.addoption(
        "--thresholds",
        dest="trust_thresholds",
        default=str(REPOSITORY / "thresholds.toml"),
        metavar="PATH",
        help="gate policy file (default: thresholds.toml at the repository root)",
    )
    group.addoption(
        "--profile",
        dest="trust_profile",
        default="ci",
        metavar="NAME",
        help="evaluation sizes from thresholds.toml: ci (small, default) or release (DecodingTrust sizes)",
    )
    group.addoption("--device", dest="trust_device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.addoption(
        "--cache-dir",
        dest="trust_cache_dir",
        metavar="PATH",
        help="checkpoints and generations cache (default $TRUSTGATE_CACHE or ~/.cache/trustgate)",
    )
    group.addoption(
        "--trust-report",
        dest="trust_report",
        default="trustgate-report",
        metavar="DIR",
        help="folder for records (JSONL) and the JSON/Markdown summary",
    )
    group.addoption("--batch-size", dest="trust_batch_size", type=int, metavar="N", help="generation batch size")
    group.addoption(
        "--allow-ungated",
        dest="trust_allow_ungated",
        action="store_true",
        help="a selected check skipped for missing data does not fail the run (default: it does; "
        "per dimension: required = false in thresholds.toml)",
    )
    group.addoption(
        "--calibration",
        dest="trust_calibration",
        default="auto",
        help="calibration text: auto (C4 when online, else the offline fallback), c4, fallback",
    )
    group.addoption(
        "--worst-seed",
        dest="trust_worst_seed",
        action="store_true",
        help="judge each method given with several @seedN on its worst seed, not the seed mean "
        "(same as thresholds.toml [gate] worst_seed = true)",
    )
    group.addoption(
        "--trust-remote-code",
        dest="trust_remote_code",
        action="store_true",
        help="allow model repositories to run their own code (off by default)",
    )
    group.addoption(
        "--engine",
        dest="trust_engine",
        default="transformers",
        choices=["transformers", "vllm", "openai"],
        help="what generates: transformers (in-process, default), vllm (a vLLM server per model, "
        "from --vllm-python), openai (an existing OpenAI-compatible endpoint, --engine-url)",
    )
    group.addoption(
        "--vllm-python",
        dest="trust_vllm_python",
        metavar="PATH",
        help="interpreter with vLLM for --engine vllm (default .venv-vllm/bin/python of this repository, "
        "made by scripts/setup.sh --with-vllm)",
    )
    group.addoption(
        "--engine-url",
        action="append",
        dest="trust_engine_urls",
        metavar="[MODEL=]URL[#SERVED]",
        help="endpoint for --engine openai (repeatable): MODEL is dense or a --model name (none: every "
        "model without its own), SERVED the endpoint's model id when it serves several",
    )
    group.addoption(
        "--tensor-parallel-size",
        dest="trust_tensor_parallel_size",
        type=int,
        default=1,
        metavar="N",
        help="--engine vllm: GPUs per model, passed to vLLM",
    )
    group.addoption(
        "--pipeline-parallel-size",
        dest="trust_pipeline_parallel_size",
        type=int,
        default=1,
        metavar="N",
        help="--engine vllm: pipeline stages per model, passed to vLLM",
    )
    group.addoption(
        "--max-model-len",
        dest="trust_max_model_len",
        type=int,
        metavar="N",
        help="--engine vllm: context length the server allows (default: the model's own)",
    )
    group.addoption(
        "--remedy",
        dest="trust_remedy",
        action="store_true",
        help="after the gate, for each variant that failed: find the fewest decoder blocks to keep at "
        "8 bits (quantized) or dense (pruned) so that it passes, confirmed on held-out items; writes "
        "a recipe for --model recipe:PATH (README: Remedy search)",
    )
    for flag, kind, default, metavar, text in REMEDY_BUDGETS:
        dest = "trust_" + flag.removeprefix("--").replace("-", "_")
        group.addoption(flag, dest=dest, type=kind, default=default, metavar=metavar, help=f"--remedy: {text}")


def given(config: pytest.Config) -> list[str]:
    """The trustgate options set on the command line to something other than their default."""
    return [name for name, dest, default in ADDED if config.getoption(dest) != default]
