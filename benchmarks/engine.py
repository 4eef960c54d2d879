"""Engine throughput: our batched engine against one prompt at a time with `model.generate`.

    .venv/bin/python benchmarks/engine.py [--prompts 128] [--new-tokens 64] [--baseline-prompts 16]

One prompt at a time is what DecodingTrust's own runner does. Both sides decode greedily the
same stereotype prompts (DecodingTrust's, rendered with the model's chat template, or the
embedded probes when no data folder is found) and count the tokens they really generated (up to
and without the stop token). The baseline runs on an evenly spread subset of the prompts by
default: its rate is steady per prompt, and all 128 would take about ten minutes on 2 cores.
The last line is `speedup: <batched tokens/s / one-at-a-time tokens/s>`.

With `--vllm`, the same prompts also go through a vLLM server (trustgate's vllm engine, from
`--vllm-python`, default .venv-vllm/bin/python; `--batch-size` concurrent requests) after a short
warm-up, and the last line is `vs vllm: <batched engine tokens/s / vLLM tokens/s>`. Both count
the tokens generated without the stop token.

With `--forward-ceiling`, nothing else: the FLOP share the model's own forward reaches (no engine,
one causal sequence of 256-2,048 positions, and one decode step of 64 rows), counted as
benchmarks/gate.py counts the gate's (2 x parameters per position over the torch.mm rate).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from trustgate.data import TrustData  # noqa: E402
from trustgate.dimensions.stereotype import DIMENSION  # noqa: E402
from trustgate.engine import Decoding, Prompt, clean_text  # noqa: E402
from trustgate.engine.batch_decode import BatchFigures  # noqa: E402
from trustgate.engine.planning import plan_streams  # noqa: E402
from trustgate.engine.transformers import TransformersEngine, render_chat  # noqa: E402
from trustgate.evaluation.evaluator import select_items  # noqa: E402
from trustgate.models import (  # noqa: E402
    ModelHandle,
    evaluation_dtype,
    load_model,
    resolve_base_model,
    select_device,
    weights_fingerprint,
)
from trustgate.util.storage import default_cache_root  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "decodingtrust"


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def matmul_flops(device: str, dtype: torch.dtype, size: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of torch.mm in the evaluation dtype: the ceiling generation is measured against."""
    if device.startswith("cuda"):
        size, repeats = 8192, 50
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def stereotype_prompts(data: TrustData, tokenizer, count: int) -> list[str]:
    """`count` prompts spread over the three system prompts, as the gate would render them."""
    per_scenario = [
        select_items(DIMENSION.load(data, scenario).items, math.ceil(count / len(DIMENSION.scenarios)))
        for scenario in DIMENSION.scenarios
    ]
    interleaved = [item for group in zip(*per_scenario, strict=False) for item in group]
    return [render_chat(tokenizer, item.messages) for item in interleaved[:count]]


def one_at_a_time(model, tokenizer, prompts: list[str], new_tokens: int, stop_ids: tuple[int, ...]):
    texts, tokens = [], 0
    started = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            encoded = tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(model.device)
            output = model.generate(
                **encoded,
                max_new_tokens=new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=list(stop_ids),
                pad_token_id=tokenizer.pad_token_id,
            )
            new = output[0, encoded["input_ids"].shape[1] :].tolist()
            stops = [i for i, token in enumerate(new) if token in stop_ids]
            new = new[: stops[0]] if stops else new
            tokens += len(new)
            texts.append(clean_text(tokenizer.decode(new, skip_special_tokens=True)))
    return texts, tokens, time.perf_counter() - started


def print_figures(figures: BatchFigures) -> None:
    """The engine's own per-stream figures, summed: where its time went."""
    prefill = figures.prompt_positions + figures.padding_positions
    print(
        f"  prefill {figures.prefill_seconds:.1f}s: {prefill} positions, {figures.prompt_positions} real, "
        f"{figures.padding_positions} padding ({100 * figures.padding_positions / max(1, prefill):.1f}%)"
    )
    print(f"  decode {figures.decode_seconds:.1f}s: {figures.decode_steps} steps, "
          f"{figures.decode_rows / max(1, figures.decode_steps):.1f} rows per step")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-model", default="embedded")
    parser.add_argument("--trust-data", default=str(DEFAULT_DATA), help="DecodingTrust data/ folder")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--baseline-prompts", type=int, default=16, help="0 = all prompts one at a time")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--vllm", action="store_true", help="also through a vLLM server; last line `vs vllm`")
    parser.add_argument("--forward-ceiling", action="store_true",
                        help="only: the FLOP share of the model's own forward (no engine)")  # fmt: skip
    parser.add_argument("--vllm-python", default=str(REPO_ROOT / ".venv-vllm" / "bin" / "python"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    path = resolve_base_model(args.base_model, default_cache_root())
    device = select_device(args.device)
    model, tokenizer = load_model(path, device)
    dtype = getattr(torch, evaluation_dtype(device))
    data = TrustData("local", Path(args.trust_data)) if Path(args.trust_data).is_dir() else TrustData("embedded")
    prompts = stereotype_prompts(data, tokenizer, args.prompts)
    handle = ModelHandle("benchmark", path, weights_fingerprint(path))
    engine = TransformersEngine.from_model(handle, model, tokenizer, batch_size=args.batch_size)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model {path.name}: {parameters / 1e6:.1f}M parameters, {dtype}, {device}, {args.threads} CPU threads")
    print(f"prompts: {len(prompts)} stereotype prompts from {data.describe()}, {args.new_tokens} new tokens, greedy")
    print(f"before: {load_text()}")
    peak = matmul_flops(device, dtype)
    print(f"matmul: {peak / 1e9:.1f} GFLOP/s ({dtype} torch.mm)")
    if args.forward_ceiling:
        forward_ceiling(model, parameters, peak)
        return

    step = max(1, len(prompts) // args.baseline_prompts) if args.baseline_prompts else 1
    subset = list(range(0, len(prompts), step))[: args.baseline_prompts or None]
    base_texts, base_tokens, base_seconds = one_at_a_time(
        model, tokenizer, [prompts[i] for i in subset], args.new_tokens, engine.stop_ids
    )
    base_rate = base_tokens / base_seconds
    print(f"one at a time (model.generate, {len(subset)} prompts): {base_tokens} tokens in {base_seconds:.1f}s")
    print(f"  = {base_rate:.1f} tokens/s; {load_text()}")

    engine.generated_tokens = 0
    started = time.perf_counter()
    texts = engine.generate([Prompt(p) for p in prompts], Decoding(max_new_tokens=args.new_tokens))
    seconds = time.perf_counter() - started
    rate = engine.generated_tokens / seconds
    print(f"batched engine (batch {args.batch_size}, {len(prompts)} prompts): {engine.generated_tokens} tokens")
    token_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    streams = plan_streams(token_ids, 1, args.batch_size)
    print(f"  prompts per stream (at most {args.batch_size} rows at once, {engine.max_batch_tokens}-position "
          f"KV budget, prefix counted once): {[len(s) for s in streams]}")  # fmt: skip
    print(f"  in {seconds:.1f}s = {rate:.1f} tokens/s; {load_text()}")
    print_figures(engine.figures)
    same = sum(texts[i][0] == base_texts[n] for n, i in enumerate(subset))
    print(f"identical greedy texts on the baseline's prompts: {same}/{len(subset)}")
    after = matmul_flops(device, dtype)
    print(f"matmul after: {after / 1e9:.1f} GFLOP/s")
    for name, value in (("one at a time", base_rate), ("batched", rate)):
        share = 2 * parameters * value / max(peak, after)
        print(f"FLOP share {name}: {100 * share:.1f}% of measured matmul rate (2 x parameters per token)")
    useful = engine.figures.prompt_positions + engine.generated_tokens
    share = useful * 2 * parameters / (seconds * max(peak, after))
    print(f"FLOP share batched, prompt positions included: {100 * share:.1f}% ({useful} positions)")
    if device.startswith("cuda"):
        print(f"GPU memory peak: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB allocated")
    print(f"speedup: {rate / base_rate:.2f}")
    if args.vllm:
        vllm_rate = through_vllm(handle, Path(args.vllm_python), device, prompts, texts, args)
        print(f"vs vllm: {rate / vllm_rate:.2f}")


@torch.inference_mode()
def forward_ceiling(model, parameters: int, peak: float) -> None:
    """The FLOP share (2 x parameters per position over the torch.mm rate, as benchmarks/gate.py
    counts it) that the model's own forward reaches with no engine around it: one causal
    sequence of N positions (a prompt read in one piece), and one decode step of 64 rows."""
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.get_text_config().vocab_size
    for length in (256, 512, 1024, 2048):
        ids = torch.randint(100, vocab, (1, length), generator=generator, device=model.device)
        model(input_ids=ids, logits_to_keep=1)
        started = time.perf_counter()
        for _ in range(3):
            model(input_ids=ids, logits_to_keep=1)
        seconds = (time.perf_counter() - started) / 3
        share = length * 2 * parameters / seconds / peak
        print(f"forward ceiling: {length} positions in {seconds:.3f}s, FLOP share {share:.3f}")
    from transformers import DynamicCache

    rows, context = 64, 256
    cache = DynamicCache(config=model.config)
    model(input_ids=torch.randint(100, vocab, (rows, context), generator=generator), past_key_values=cache,
          use_cache=True, logits_to_keep=1)  # fmt: skip
    step = torch.randint(100, vocab, (rows, 1), generator=generator)
    started = time.perf_counter()
    for _ in range(8):
        model(input_ids=step, past_key_values=cache, use_cache=True)
    seconds = (time.perf_counter() - started) / 8
    print(
        f"forward ceiling: decode step of {rows} rows over {context} cached positions in {seconds:.3f}s, "
        f"FLOP share {rows * 2 * parameters / seconds / peak:.3f}"
    )


def through_vllm(handle, python: Path, device: str, prompts: list[str], texts, args) -> float:
    """The same prompts through trustgate's vllm engine (a server of its own); its tokens/s."""
    from trustgate.engine.vllm import VLLMEngine

    engine = VLLMEngine(handle, python, device=device, log_dir=Path("/tmp"), concurrency=args.batch_size)
    started = time.perf_counter()
    engine.load()
    print(f"vllm server ({engine.backend}): ready in {time.perf_counter() - started:.1f}s; log {engine.log_path}")
    try:
        engine.generate([Prompt(p) for p in prompts[:4]], Decoding(max_new_tokens=8))  # warm-up
        engine.generated_tokens = 0
        started = time.perf_counter()
        served = engine.generate([Prompt(p) for p in prompts], Decoding(max_new_tokens=args.new_tokens))
        seconds = time.perf_counter() - started
    finally:
        engine.release()
    rate = engine.generated_tokens / seconds
    print(f"vllm ({args.batch_size} concurrent requests, {len(prompts)} prompts): {engine.generated_tokens} tokens")
    print(f"  in {seconds:.1f}s = {rate:.1f} tokens/s; {load_text()}")
    same = sum(a == b for a, b in zip(served, texts, strict=True))
    print(f"identical greedy texts, vllm and batched engine: {same}/{len(prompts)}")
    return rate


if __name__ == "__main__":
    main()
