"""Batched generation: length-sorted, left-padded, KV-cached, cached per prompt.

The engine is a small interface (`render`, `generate`) so that another backend (vLLM, which
loads compressed-tensors, GPTQ and AWQ checkpoints) can stand beside the transformers one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch

from trustgate.batch_decode import BatchSpec, common_prefix_length, generate_batch
from trustgate.generation_cache import GenerationCache
from trustgate.models import ModelHandle
from trustgate.progress import Progress


@dataclass(frozen=True)
class Decoding:
    """Decoding settings; part of every generation cache key."""

    max_new_tokens: int
    samples: int = 1
    temperature: float = 0.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


class Engine(Protocol):
    handle: ModelHandle

    def render(self, messages: list[dict[str, str]]) -> str: ...

    def generate(
        self, prompts: Sequence[str], decoding: Decoding, progress: Progress | None = None
    ) -> list[list[str]]: ...


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def clean_text(text: str) -> str:
    """Replacement characters from broken UTF-8 byte sequences are dropped, not scored."""
    return text.replace("\ufffd", "").strip()


def render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The model's own chat template; plain concatenation for a model that has none."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "\n\n".join(m["content"] for m in messages) + "\n"


def plan_batches(
    token_ids: Sequence[Sequence[int]],
    samples: int,
    batch_size: int,
    max_batch_tokens: int,
    max_new_tokens: int,
) -> list[list[int]]:
    """Prompt indices per batch: neighbours in token order, so a batch shares a long prefix.

    A batch ends when its rows (prompts x samples) reach `batch_size`, when its KV cache would
    pass `max_batch_tokens` (rows x (widest prompt + new tokens)), or when the next prompt would
    halve the shared prefix of a batch that is already a quarter full (a new system prompt).
    """
    order = sorted(range(len(token_ids)), key=lambda i: list(token_ids[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    shared = width = 0
    for index in order:
        ids = token_ids[index]
        if current:
            # In token order, the prefix shared by a run is the one its first and last share.
            common = common_prefix_length([token_ids[current[0]], ids])
            rows = (len(current) + 1) * samples
            full = rows > batch_size or rows * (max(width, len(ids)) + max_new_tokens) > max_batch_tokens
            new_prefix = common * 2 < shared and len(current) * samples * 4 >= batch_size
            if full or new_prefix:
                batches.append(current)
                current = []
        if not current:
            shared, width = len(ids), 0
        else:
            shared = common_prefix_length([token_ids[current[0]], ids])
        current.append(index)
        width = max(width, len(ids))
    if current:
        batches.append(current)
    return batches


CPU_KV_CACHE_BYTES = 512 << 20
GPU_KV_CACHE_SHARE = 0.5  # of the memory free once the model is loaded


def kv_cache_tokens(model: Any) -> int:
    """How many cached positions one batch may hold: a memory budget in bytes (512 MiB on a CPU,
    half the free memory of a GPU) over the model's key/value bytes per position. A token
    count alone would be 46 KB per position for the embedded model and 800 KB for a 13B one."""
    config = model.config.get_text_config()
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    element = next(model.parameters()).element_size()
    per_position = 2 * config.num_hidden_layers * kv_heads * head_dim * element
    budget = CPU_KV_CACHE_BYTES
    if model.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(model.device)
        budget = int(free * GPU_KV_CACHE_SHARE)
    return max(1024, budget // per_position)


class TransformersEngine:
    """transformers models on CPU or GPU, with shared-prefix batches (see batch_decode)."""

    def __init__(
        self,
        handle: ModelHandle,
        model: Any,
        tokenizer: Any,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.handle = handle
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens or kv_cache_tokens(model)
        eos = {tokenizer.eos_token_id}
        configured = getattr(model.generation_config, "eos_token_id", None)
        eos.update(configured if isinstance(configured, list) else [configured])
        self.stop_ids = tuple(sorted(i for i in eos if i is not None))
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]
        self.generated_tokens = 0  # new tokens produced, stop tokens excluded (benchmarks read it)

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_chat(self.tokenizer, messages)

    def _spec(self, token_ids: list[list[int]], decoding: Decoding) -> BatchSpec:
        # The seed depends on the batch's prompts, not on its position in the run.
        seed_text = repr(token_ids) + repr(asdict(decoding))
        seed = int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16) + decoding.seed
        return BatchSpec(
            max_new_tokens=decoding.max_new_tokens,
            samples=decoding.samples,
            temperature=decoding.temperature,
            seed=seed,
            stop_ids=self.stop_ids,
            pad_id=self.pad_id,
        )

    def _generate_batch(self, token_ids: list[list[int]], decoding: Decoding) -> list[list[str]]:
        new_tokens = generate_batch(self.model, token_ids, self._spec(token_ids, decoding), self.handle.name)
        self.generated_tokens += sum(len(tokens) for tokens in new_tokens)
        texts = [clean_text(t) for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
        return [texts[i * decoding.samples : (i + 1) * decoding.samples] for i in range(len(token_ids))]

    def generate(self, prompts: Sequence[str], decoding: Decoding, progress: Progress | None = None) -> list[list[str]]:
        token_ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        results: list[list[str]] = [[] for _ in prompts]
        pending = plan_batches(
            token_ids, decoding.samples, self.batch_size, self.max_batch_tokens, decoding.max_new_tokens
        )
        while pending:
            batch = pending.pop(0)
            try:
                texts = self._generate_batch([token_ids[i] for i in batch], decoding)
            except Exception as exc:
                if not _is_out_of_memory(exc) or len(batch) == 1:
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                # Out of memory: retry the same prompts in halves, and keep later batches smaller.
                self.batch_size = max(1, len(batch) * decoding.samples // 2)
                half = len(batch) // 2
                pending[:0] = [batch[:half], batch[half:]]
                continue
            for index, text in zip(batch, texts, strict=True):
                results[index] = text
            if progress:
                progress.update(len(batch))
        return results


def cached_generate(
    engine_factory: Any,
    handle: ModelHandle,
    prompts: Sequence[str],
    decoding: Decoding,
    cache: GenerationCache,
    description: str,
    chunk: int = 64,
    backend: str = "transformers",
    stats: dict[str, int] | None = None,
) -> list[list[str]]:
    """Generations for `prompts`, from the cache where present; misses are generated in chunks
    and committed as they finish, so an interrupted run loses at most one chunk.

    `backend` (engine and compute dtype) is part of the key: bf16 on a GPU and float32 on a CPU
    generate different text from the same weights. `stats["generated"]` counts the misses.
    """
    keys = generation_keys(handle, prompts, decoding, cache, backend)
    found = cache.get_many(keys)
    # Text order keeps prompts that share a system prompt in one chunk (see plan_batches).
    missing = sorted((i for i, key in enumerate(keys) if key not in found), key=lambda i: prompts[i])
    if missing:
        engine = engine_factory(handle)
        progress = Progress(description, total=len(missing), unit="prompts")
        try:
            for start in range(0, len(missing), chunk):
                indices = missing[start : start + chunk]
                texts = engine.generate([prompts[i] for i in indices], decoding, progress=progress)
                cache.put_many((keys[i], text) for i, text in zip(indices, texts, strict=True))
                found.update({keys[i]: text for i, text in zip(indices, texts, strict=True)})
                if stats is not None:
                    stats["generated"] = stats.get("generated", 0) + len(indices)
        finally:
            progress.close()
    return [found[key] for key in keys]


def generation_keys(
    handle: ModelHandle, prompts: Sequence[str], decoding: Decoding, cache: GenerationCache, backend: str
) -> list[str]:
    """One key per prompt: weights fingerprint (never the model's name), prompt, decoding, backend."""
    settings = {**asdict(decoding), "backend": backend}
    return [cache.key(handle.fingerprint, prompt, settings) for prompt in prompts]
