"""What a GPU runner does differently, exercised on a CPU with tiny random models: bfloat16
loading and generation, the shared-prefix attention in bfloat16, a compression of a bfloat16
checkpoint, device_map, and the vLLM server command line for a GPU, checked as data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.test_prefix_attention import _layered_prompts, _spec
from tests.tiny_models import NEVER, generate_alone, tiny_causal_lm
from trustgate.engine import batch_decode, prefix_attention, stream_rows
from trustgate.engine.batch_decode import generate_batch
from trustgate.models import ModelHandle, load_model, weights_fingerprint
from trustgate.models import loading as model_loading


def first_logits(model: Any, prompts: list[list[int]], shared: bool) -> torch.Tensor:
    """The first logits of the shared-prefix path (`shared`: packed, the prefix stored once) or of
    the copied-cache path (transformers' own cache, any architecture)."""
    rows = stream_rows.SharedPrefixRows if shared else stream_rows.CopiedCacheRows
    return rows(model, [prompts], _spec(NEVER), batch_decode.BatchFigures()).first_logits


class _Loaded:
    """Stands in for a transformers model: records what `from_pretrained` was asked for."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def to(self, device: str) -> _Loaded:
        self.kwargs["moved_to"] = device
        return self

    def eval(self) -> _Loaded:
        return self


@pytest.mark.parametrize(
    ("device", "dtype", "device_map"),
    [
        ("cuda", torch.bfloat16, "auto"),  # one process over every visible GPU (a model larger than one GPU)
        ("cuda:1", torch.bfloat16, {"": "cuda:1"}),  # an xdist worker pinned to its GPU
        ("cpu", torch.float32, None),
    ],
)
def test_a_gpu_load_asks_for_bfloat16_and_a_device_map(tiny_llama_dir: Path, monkeypatch, device, dtype, device_map):
    import transformers

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda path, **kw: _Loaded(**kw))
    model, tokenizer = load_model(tiny_llama_dir, device)
    assert model.kwargs["dtype"] == dtype and model.kwargs.get("device_map") == device_map
    assert model.kwargs.get("moved_to") == (None if device.startswith("cuda") else "cpu")
    assert model.kwargs["use_safetensors"] is True and model.kwargs["trust_remote_code"] is False
    assert tokenizer.padding_side == "left"


def test_a_bfloat16_model_loads_and_generates_as_on_a_gpu(tiny_llama_dir: Path, monkeypatch):
    """The GPU dtype on the CPU: the weights load in bfloat16 and greedy generation runs."""
    monkeypatch.setattr(model_loading, "evaluation_dtype", lambda device: "bfloat16")
    model, tokenizer = load_model(tiny_llama_dir, "cpu")
    assert next(model.parameters()).dtype == torch.bfloat16
    prompt = tokenizer("I agree or I disagree:", return_tensors="pt")
    output = model.generate(**prompt, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert output.shape[1] == prompt["input_ids"].shape[1] + 6


def test_shared_prefix_attention_in_bfloat16_matches_the_reference_within_bfloat16_tolerance():
    """First logits within bfloat16's tolerance of the copied-cache path; greedy tokens equal to
    `model.generate` one prompt at a time, or, where not, at a step where the reference's two best
    tokens are within bfloat16 rounding of each other (a tie that summation order decides)."""
    model = tiny_causal_lm("llama").to(torch.bfloat16)
    prompts = _layered_prompts(seed=4)
    with torch.inference_mode():
        with prefix_attention.prefix_attention(model):
            shared = first_logits(model, prompts, shared=True)
        copied = first_logits(model, prompts, shared=False)
    torch.testing.assert_close(shared.float(), copied.float(), atol=3e-2, rtol=2e-2)  # bf16: 8 mantissa bits
    expected = [generate_alone(model, p, 10, stop=NEVER) for p in prompts]
    produced = generate_batch(model, prompts, _spec(NEVER), "llama")
    for prompt, want, got in zip(prompts, expected, produced, strict=True):
        if want == got:
            continue
        step = next(i for i, (a, b) in enumerate(zip(want, got, strict=True)) if a != b)
        with torch.inference_mode():
            logits = model(torch.tensor([prompt + want[:step]])).logits[0, -1].float()
        top2 = logits.topk(2).values
        assert float(top2[0] - top2[1]) <= 2**-7 * float(top2[0].abs()) + 1e-2, (step, want, got)


def test_a_bfloat16_checkpoint_compresses_and_verifies(tiny_llama_dir: Path, tmp_path: Path, cache_root: Path):
    """Hub models are usually stored in bfloat16: the worker loads them in float32, compresses
    and verifies; the result loads back."""
    from transformers import AutoModelForCausalLM

    import compressors
    from compressors.verify import compression_problems

    folder = tmp_path / "tiny-bf16"
    AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16).save_pretrained(folder)
    for name in tiny_llama_dir.iterdir():
        if name.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            (folder / name.name).write_bytes(name.read_bytes())
    assert json.loads((folder / "config.json").read_text()).get("dtype", "bfloat16") == "bfloat16"
    base = ModelHandle("dense", folder, weights_fingerprint(folder))
    spec = compressors.parse_variant("magnitude-2:4")
    handle, _ = compressors.compressed_model(spec, base, tmp_path / "cache")
    model, _ = load_model(handle.path, "cpu")
    assert compression_problems(model, spec) == []


def test_the_vllm_server_command_for_a_gpu(tmp_path: Path, monkeypatch):
    """dtype, memory share, parallel sizes and the pinned GPU, as the server would be started."""
    from trustgate.engine.vllm import GPU_MEMORY_SHARE, VLLMEngine

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    engine = VLLMEngine(
        ModelHandle("gptq4", tmp_path, "f" * 64),
        Path(sys.executable),
        device="cuda:1",
        log_dir=tmp_path,
        max_model_len=4096,
        tensor_parallel_size=2,
        pipeline_parallel_size=1,
    )
    arguments = engine.server_arguments()
    pairs = dict(zip(arguments[::2], arguments[1::2], strict=False))
    assert pairs["--dtype"] == "bfloat16" and pairs["--tensor-parallel-size"] == "2"
    assert pairs["--pipeline-parallel-size"] == "1" and pairs["--max-model-len"] == "4096"
    assert float(arguments[arguments.index("--gpu-memory-utilization") + 1]) == GPU_MEMORY_SHARE == 0.42
    assert "--enforce-eager" not in arguments  # CUDA graphs on a GPU
    assert engine.server_env()["CUDA_VISIBLE_DEVICES"] == "5"  # worker's cuda:1 among the visible 4,5,6
    on_cpu = VLLMEngine(ModelHandle("gptq4", tmp_path, "f" * 64), Path(sys.executable), device="cpu", log_dir=tmp_path)
    assert "--enforce-eager" in on_cpu.server_arguments() and "float32" in on_cpu.server_arguments()
