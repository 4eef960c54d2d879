"""Compress one variant in a process of its own: `python -m compressors.worker JOB.json`.

llm-compressor keeps a global compression session, so each compression runs here, never in
the pytest process that evaluates. The job file names the base checkpoint, the variant, the
calibration texts and the output folder; the worker saves, reloads and verifies the result.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

from compressors.pruning import MAGNITUDE, magnitude_prune
from compressors.quantization import allow_awq_without_accelerator
from compressors.variants import VariantSpec
from compressors.verify import compression_problems
from trustgate.util.progress import STAGE_PREFIX

# Calibration forward passes in batches: on a CPU, one sample at a time made gptq4 on the
# embedded model take over half an hour; equal-length windows make batching lossless.
CALIBRATION_BATCH_SIZE = 16


def calibration_pipeline(max_seq_length: int) -> dict[str, Any]:
    """How calibration texts become batches here: part of the checkpoint key."""
    return {
        "windows": "common-length-truncation",
        "max_seq_length": max_seq_length,
        "batch_size": CALIBRATION_BATCH_SIZE,
    }


def _calibration_dataset(texts: list[str], tokenizer: Any, max_seq_length: int) -> Any:
    """Token windows of one common length (as GPTQ's C4 sampling does), so batches need no padding."""
    from datasets import Dataset

    encoded = tokenizer(texts, truncation=True, max_length=max_seq_length, padding=False)["input_ids"]
    length = min(len(ids) for ids in encoded)
    windows = [ids[:length] for ids in encoded]
    return Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * length for _ in windows]})


STAGE_SECONDS: dict[str, float] = {}  # seconds per stage, in the figures (what compression spends where)
_current: list = [None, 0.0]  # the stage running and when it began


def stage(text: str | None, key: str | None = None) -> None:
    """Announce a stage on stdout (the compression log), where the parent's heartbeat reads it,
    and close the one before in STAGE_SECONDS (under `key`, a short name). None: the last ended."""
    now = time.perf_counter()
    if _current[0] is not None:
        STAGE_SECONDS[_current[0]] = round(STAGE_SECONDS.get(_current[0], 0.0) + now - _current[1], 2)
    _current[:] = [key or text, now]
    if text is not None:
        print(f"{STAGE_PREFIX}{text}", flush=True)


def run(job: dict[str, Any]) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    raw = job["spec"]
    spec = VariantSpec(
        **{
            **raw,
            "structure": tuple(raw["structure"]) if raw["structure"] else None,
            "kept_blocks": tuple(raw.get("kept_blocks") or ()),
        }
    )
    out = Path(job["out"])
    started = time.perf_counter()
    stage("loading the base model", "load")
    tokenizer = AutoTokenizer.from_pretrained(job["base"])
    model = AutoModelForCausalLM.from_pretrained(job["base"], dtype=torch.float32, use_safetensors=True)
    applied: Any = job["recipe"]
    calibration_positions = 0
    parameters = sum(p.numel() for p in model.parameters())
    if MAGNITUDE in job["recipe"]:
        stage("magnitude pruning", "prune")
        magnitude_prune(model, job["recipe"][MAGNITUDE])
        model.save_pretrained(out, safe_serialization=True)
    else:
        from llmcompressor import oneshot
        from llmcompressor.recipe import Recipe

        if spec.method == "awq":
            allow_awq_without_accelerator()
        recipe = Recipe.from_dict(job["recipe"])
        applied = recipe.yaml()  # with every default llm-compressor filled in, for the record
        stage("preparing calibration windows", "prepare")
        dataset = _calibration_dataset(job["calibration_texts"], tokenizer, job["max_seq_length"])
        calibration_positions = len(dataset) * len(dataset[0]["input_ids"]) if len(dataset) else 0
        torch.manual_seed(spec.seed)
        stage(f"calibrating and compressing ({spec.method}, {len(job['calibration_texts'])} calibration samples)",
              "calibrate")  # fmt: skip
        oneshot(
            model=model,
            dataset=dataset,
            recipe=recipe,
            max_seq_length=job["max_seq_length"],
            num_calibration_samples=len(job["calibration_texts"]),
            batch_size=CALIBRATION_BATCH_SIZE,
            tokenizer=tokenizer,
        )
        # Quantized weights are packed (compressed-tensors); pruned ones stay dense with zeros,
        # which every loader reads.
        stage("saving the checkpoint", "save")
        model.save_pretrained(out, save_compressed=bool(spec.bits))
    tokenizer.save_pretrained(out)
    seconds = time.perf_counter() - started
    del model

    from trustgate.models import load_model

    stage("reloading and verifying the checkpoint", "verify")
    reloaded, _ = load_model(out, "cpu")
    problems = compression_problems(reloaded, spec)
    stage(None)
    if problems:
        raise SystemExit("compression did not take effect:\n" + "\n".join(problems[:10]))
    gpu_peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    return {
        "applied_recipe": applied,
        "compression_seconds": round(seconds, 2),
        # Where the time went, and the work the calibration stage must do at least: llm-compressor's
        # sequential pipeline runs each layer over the calibration windows twice (inputs for the
        # Hessians, then outputs of the compressed layer), 2 x parameters FLOPs per position each;
        # benchmarks/gate.py turns these into the compression's FLOP share.
        "stage_seconds": dict(STAGE_SECONDS),
        "calibration_positions": calibration_positions,
        "parameters": parameters,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_gpu_mb": round(gpu_peak / 2**20, 1),
    }


def main() -> None:
    job_file = Path(sys.argv[1])
    job = json.loads(job_file.read_text())
    figures = run(job)
    Path(job["figures"]).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
