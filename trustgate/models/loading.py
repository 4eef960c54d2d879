"""Loading a checkpoint for evaluation: the device, the compute dtype, model and tokenizer."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

from trustgate.util.errors import TrustgateError

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(requested: str) -> None:
    """An unknown device, or CUDA where there is none, is an error now, not a silent CPU run."""
    if not DEVICE.fullmatch(requested):
        raise TrustgateError(f"--trust-device {requested}", "unknown device", "choose auto, cpu, cuda or cuda:N")
    if not requested.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(requested.split(":")[1]) if ":" in requested else 0
    if index >= count:
        available = ", ".join(["cpu", *(f"cuda:{i}" for i in range(count))])
        raise TrustgateError(
            f"--trust-device {requested}",
            "no such CUDA device" + ("" if count else " (this machine has no usable CUDA GPU)"),
            f"available here: {available}; or --trust-device auto",
        )


def select_device(requested: str) -> str:
    """`auto`: a GPU when there is one, else the CPU.

    Under pytest-xdist with several visible GPUs, worker gwN gets GPU N modulo the GPU count,
    so `pytest -n <number of GPUs>` puts one worker on each GPU; a model too large for one GPU
    needs `--trust-device cuda` (all GPUs, device_map="auto") and one worker.
    """
    import torch

    if requested != "auto":
        return requested
    if not torch.cuda.is_available():
        return "cpu"
    return worker_gpu(os.environ.get("PYTEST_XDIST_WORKER"), torch.cuda.device_count())


def worker_gpu(worker: str | None, gpu_count: int) -> str:
    """The CUDA device of an xdist worker ("gw3") among `gpu_count` GPUs; "cuda" outside xdist."""
    if gpu_count > 1 and worker and worker.startswith("gw") and worker[2:].isdigit():
        return f"cuda:{int(worker[2:]) % gpu_count}"
    return "cuda"


def evaluation_dtype(device: str) -> str:
    """bf16 on GPUs, float32 on CPUs (no fast bf16 kernels there); part of generation cache keys."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def load_model(path: Path, device: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer for evaluation.

    Compressed-tensors checkpoints are dequantized on load: evaluation measures the rounded
    weights, and dense kernels are the fast path on CPU.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": trust_remote_code}
    quant = getattr(config, "quantization_config", None)
    quant_method = (
        (quant or {}).get("quant_method") if isinstance(quant, dict) else getattr(quant, "quant_method", None)
    )
    if quant_method == "compressed-tensors":
        from transformers.utils.quantization_config import CompressedTensorsConfig

        kwargs["quantization_config"] = CompressedTensorsConfig(dequantize=True)
    kwargs["dtype"] = getattr(torch, evaluation_dtype(device))
    if device.startswith("cuda"):
        kwargs["device_map"] = "auto" if device == "cuda" else {"": device}
    tokenizer = load_tokenizer(path, trust_remote_code)
    try:
        with warnings.catch_warnings():
            # Expected: our dequantize=True overrides the checkpoint's own quantization config.
            warnings.filterwarnings("ignore", message="You passed `quantization_config`")
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise TrustgateError(str(path), f"the checkpoint does not load ({exc})", "delete it so it is rebuilt") from exc
    if not device.startswith("cuda"):
        model.to(device)
    model.eval()
    return model, tokenizer


def load_tokenizer(path: Path, trust_remote_code: bool = False) -> Any:
    """The checkpoint's tokenizer, left-padding, with a pad token (its EOS when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer
