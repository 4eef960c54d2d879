"""Compressed checkpoints on demand: variant grammar, recipes, the cached, locked build."""

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

from compressors.calibration import calibration_set
from compressors.variants import VariantSpec, parse_variant, parse_variants
from trustgate.errors import TrustgateError
from trustgate.models import ModelHandle, download_from_hub, weights_fingerprint
from trustgate.progress import heartbeat
from trustgate.storage import build_once, digest, read_entry_metadata

__all__ = ["VariantSpec", "compressed_model", "library_versions", "parse_variant", "parse_variants"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_SEQ_LENGTH = 512


def library_versions() -> dict[str, str]:
    return {name: version(name) for name in ("llmcompressor", "compressed-tensors", "transformers", "torch")}


def _run_worker(job: dict[str, Any], staging: Path, label: str) -> dict[str, Any]:
    job = {**job, "out": str(staging), "figures": str(staging / "compression-figures.json")}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    log_path = staging / "compression.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        with open(log_path, "w") as log, heartbeat(f"compressing {label}"):
            status = subprocess.run(
                [sys.executable, "-m", "compressors.worker", handle.name],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                check=False,
            )
    finally:
        os.unlink(handle.name)
    if status.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise TrustgateError(
            f"--model {label}", f"compression failed (exit {status.returncode}):\n{tail}\n", "see the log above"
        )
    figures = json.loads((staging / "compression-figures.json").read_text())
    return figures


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
    key = digest(
        base.fingerprint,
        spec.recipe(),
        calibration.fingerprint if calibration else None,
        max_seq_length if calibration else None,
        library_versions(),
    )
    folder = cache_root / "checkpoints" / f"{spec.family.replace(':', 'of')}-{key[:16]}"
    job = {
        "spec": {**spec.__dict__},
        "base": str(base.path),
        "calibration_texts": list(calibration.texts) if calibration else [],
        "max_seq_length": max_seq_length,
    }

    def build(staging: Path) -> dict[str, Any]:
        figures = _run_worker(job, staging, spec.name)
        return {
            **figures,
            "variant": spec.name,
            "recipe": spec.recipe(),
            "base_fingerprint": base.fingerprint,
            "calibration": calibration.describe() if calibration else "none",
            "libraries": library_versions(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    path, _ = build_once(folder, build)
    metadata = read_entry_metadata(path)
    return ModelHandle(name=spec.name, path=path, fingerprint=weights_fingerprint(path)), metadata
