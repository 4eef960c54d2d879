"""Compressed checkpoints on demand: variant grammar, recipes, the cached, locked build.

The cache key is the recipe that is applied, serialised: llm-compressor's own recipe schema for
GPTQ, AWQ, SparseGPT and Wanda (every scheme field, the ignore list, each layer's group size)
and, for our own magnitude pruning, its settings with a digest of the code that applies them;
plus the base weights' hash, the calibration texts and pipeline, and the library versions.
Editing any of these makes a new checkpoint, never a stale one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from compressors.calibration import CalibrationSet, calibration_set
from compressors.variants import VariantSpec, parse_variant, parse_variants
from trustgate.models import ModelHandle, download_from_hub, weights_fingerprint
from trustgate.util.errors import TrustgateError
from trustgate.util.events import record_event
from trustgate.util.process import die_with_parent
from trustgate.util.progress import STAGE_PREFIX, heartbeat
from trustgate.util.storage import build_once, digest, read_entry_metadata

__all__ = [
    "VariantSpec",
    "checkpoint_key",
    "compressed_model",
    "library_versions",
    "parse_variant",
    "parse_variants",
    "recipe_for",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_SEQ_LENGTH = 512
# The worker's figures the event log carries (benchmarks/gate.py reads them).
COMPRESSION_FIGURES = ("compression_seconds", "stage_seconds", "calibration_positions", "parameters")


def library_versions() -> dict[str, str]:
    return {name: version(name) for name in ("llmcompressor", "compressed-tensors", "transformers", "torch")}


def skeleton(base: Path) -> Any:
    """The base model's modules on the meta device: layer names and widths, no weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base))


def recipe_for(spec: VariantSpec, model: Any) -> dict[str, Any]:
    """The recipe the worker applies to `model` (a skeleton is enough) for this variant."""
    from compressors.pruning import pruning_recipe
    from compressors.quantization import quantization_recipe

    return quantization_recipe(spec, model) if spec.bits else pruning_recipe(spec, model)


def checkpoint_key(
    base: ModelHandle, recipe: dict[str, Any], calibration: CalibrationSet | None, max_seq_length: int
) -> str:
    from compressors.worker import calibration_pipeline

    return digest(
        base.fingerprint,
        recipe,
        calibration.fingerprint if calibration else None,
        calibration_pipeline(max_seq_length) if calibration else None,
        library_versions(),
    )


def worker_stage(log_path: Path) -> str:
    """The stage the compression worker last announced and its log's last line, for the heartbeat."""
    try:
        with open(log_path, "rb") as log:
            log.seek(max(0, log_path.stat().st_size - 8192))
            lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    stages = [line.removeprefix(STAGE_PREFIX) for line in lines if line.startswith(STAGE_PREFIX)]
    stage = stages[-1] if stages else "starting"
    last = lines[-1][-100:] if lines and not lines[-1].startswith(STAGE_PREFIX) else ""
    return f"{stage}" + (f" (log: {last})" if last else "")


def _run_worker(job: dict[str, Any], staging: Path, label: str) -> dict[str, Any]:
    job = {**job, "out": str(staging), "figures": str(staging / "compression-figures.json")}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    log_path = staging / "compression.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    env["PYTHONUNBUFFERED"] = "1"  # the heartbeat reads the worker's stages from its log as they happen
    try:
        with open(log_path, "w") as log, heartbeat(f"compressing {label}", stage=lambda: worker_stage(log_path)):
            status = subprocess.run(
                [sys.executable, "-m", "compressors.worker", handle.name],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                check=False,
                preexec_fn=die_with_parent,  # a SIGKILLed run leaves no worker compressing on its own
            )
    finally:
        os.unlink(handle.name)
    if status.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise TrustgateError(
            f"--model {label}", f"compression failed (exit {status.returncode}):\n{tail}\n", "see the log above"
        )
    return json.loads((staging / "compression-figures.json").read_text())


def _checkpoint_variant(spec: VariantSpec) -> ModelHandle:
    assert spec.checkpoint is not None
    path = Path(spec.checkpoint)
    if not path.exists():
        path = download_from_hub(spec.checkpoint, f"--model {spec.name}")
    return ModelHandle(name=spec.name, path=path, fingerprint=weights_fingerprint(path))


def compressed_model(
    spec: VariantSpec,
    base: ModelHandle,
    cache_root: Path,
    calibration_source: str = "auto",
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
) -> tuple[ModelHandle, dict[str, Any]]:
    """The variant's checkpoint, from the cache or built now; with what it took to build it."""
    if spec.is_dense:
        return ModelHandle(name="dense", path=base.path, fingerprint=base.fingerprint), {}
    if spec.method == "checkpoint":
        return _checkpoint_variant(spec), {"source": spec.checkpoint}
    calibration = (
        calibration_set(spec.calibration_samples, spec.seed, calibration_source) if spec.needs_calibration else None
    )
    recipe = recipe_for(spec, skeleton(base.path))
    key = checkpoint_key(base, recipe, calibration, max_seq_length)
    folder = cache_root / "checkpoints" / f"{spec.family.replace(':', 'of')}-{key[:16]}"
    job = {
        "spec": {**spec.__dict__},
        "recipe": recipe,
        "base": str(base.path),
        "calibration_texts": list(calibration.texts) if calibration else [],
        "max_seq_length": max_seq_length,
    }

    def build(staging: Path) -> dict[str, Any]:
        figures = _run_worker(job, staging, spec.name)
        return {
            **figures,
            "variant": spec.name,
            "recipe": recipe,
            "base_fingerprint": base.fingerprint,
            "calibration": calibration.describe() if calibration else "none",
            "libraries": library_versions(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    path, built = build_once(folder, build)
    metadata = read_entry_metadata(path)
    if built:
        record_event("compress", variant=spec.name, **{k: metadata.get(k) for k in COMPRESSION_FIGURES})
    return ModelHandle(name=spec.name, path=path, fingerprint=weights_fingerprint(path)), metadata
