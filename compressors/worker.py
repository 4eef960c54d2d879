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


def stage(text: str) -> None:
    """Announce a stage on stdout (the compression log), where the parent's heartbeat reads it."""
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
    stage("loading the base model")
    tokenizer = AutoTokenizer.from_pretrained(job["base"])
    model = AutoModelForCausalLM.from_pretrained(job["base"], dtype=torch.float32, use_safetensors=True)
    applied: Any = job["recipe"]
    if MAGNITUDE in job["recipe"]:
        stage("magnitude pruning")
        magnitude_prune(model, job["recipe"][MAGNITUDE])
        model.save_pretrained(out, safe_serialization=True)
    else:
        from llmcompressor import oneshot
        from llmcompressor.recipe import Recipe

        if spec.method == "awq":
            allow_awq_without_accelerator()
        recipe = Recipe.from_dict(job["recipe"])
        applied = recipe.yaml()  # with every default llm-compressor filled in, for the record
        dataset = _calibration_dataset(job["calibration_texts"], tokenizer, job["max_seq_length"])
        torch.manual_seed(spec.seed)
        stage(f"calibrating and compressing ({spec.method}, {len(job['calibration_texts'])} calibration samples)")
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
        stage("saving the checkpoint")
        model.save_pretrained(out, save_compressed=bool(spec.bits))
    tokenizer.save_pretrained(out)
    seconds = time.perf_counter() - started
    del model

    from trustgate.models import load_model

    stage("reloading and verifying the checkpoint")
    reloaded, _ = load_model(out, "cpu")
    problems = compression_problems(reloaded, spec)
    if problems:
        raise SystemExit("compression did not take effect:\n" + "\n".join(problems[:10]))
    gpu_peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    return {
        "applied_recipe": applied,
        "compression_seconds": round(seconds, 2),
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
