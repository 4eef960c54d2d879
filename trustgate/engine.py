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

from trustgate.errors import ModelOutputError
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

    def generate(self, prompts: Sequence[str], decoding: Decoding) -> list[list[str]]: ...


class _RejectNonFinite:
    """Logits processor: NaN or inf logits mean broken weights; stop with the model's name."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(scores).all():
            raise ModelOutputError(
                f"model {self.model_name}",
                "produced NaN or infinite logits",
                "the checkpoint is broken: rebuild it (delete its cache folder) or check its dtype",
            )
        return scores


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


class TransformersEngine:
    def __init__(
        self,
        handle: ModelHandle,
        model: Any,
        tokenizer: Any,
        batch_size: int = 32,
        max_batch_tokens: int = 32768,
    ) -> None:
        self.handle = handle
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        eos = {tokenizer.eos_token_id}
        configured = getattr(model.generation_config, "eos_token_id", None)
        eos.update(configured if isinstance(configured, list) else [configured])
        self.stop_ids = sorted(i for i in eos if i is not None)

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_chat(self.tokenizer, messages)

    def _batches(self, lengths: list[int], samples: int) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches, current = [], []
        for index in order:
            widest = max([lengths[i] for i in current] + [lengths[index]])
            if current and (
                (len(current) + 1) * samples > self.batch_size
                or widest * (len(current) + 1) * samples > self.max_batch_tokens
            ):
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        return batches

    @torch.inference_mode()
    def _generate_batch(self, prompts: list[str], decoding: Decoding) -> list[list[str]]:
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {k: v.to(self.model.device) for k, v in encoded.items()}
        seed_text = "\x00".join(prompts) + repr(asdict(decoding))
        torch.manual_seed(int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16) + decoding.seed)
        kwargs: dict[str, Any] = {
            "max_new_tokens": decoding.max_new_tokens,
            "num_return_sequences": decoding.samples,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
            "logits_processor": [_RejectNonFinite(self.handle.name)],
        }
        if decoding.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=decoding.temperature, top_p=1.0, top_k=0)
        output = self.model.generate(**encoded, **kwargs)
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        texts = [clean_text(t) for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
        return [texts[i * decoding.samples : (i + 1) * decoding.samples] for i in range(len(prompts))]

    def generate(self, prompts: Sequence[str], decoding: Decoding, progress: Progress | None = None) -> list[list[str]]:
        lengths = [len(ids) for ids in self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
        results: list[list[str]] = [[] for _ in prompts]
        pending = self._batches(lengths, decoding.samples)
        while pending:
            batch = pending.pop(0)
            try:
                texts = self._generate_batch([prompts[i] for i in batch], decoding)
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
) -> list[list[str]]:
    """Generations for `prompts`, from the cache where present; misses are generated in chunks
    and committed as they finish, so an interrupted run loses at most one chunk."""
    settings = asdict(decoding)
    keys = [cache.key(handle.fingerprint, prompt, settings) for prompt in prompts]
    found = cache.get_many(keys)
    # Longest first across the whole run, so chunks hold prompts of similar length.
    missing = sorted((i for i, key in enumerate(keys) if key not in found), key=lambda i: -len(prompts[i]))
    if missing:
        engine = engine_factory(handle)
        progress = Progress(description, total=len(missing), unit="prompts")
        try:
            for start in range(0, len(missing), chunk):
                indices = missing[start : start + chunk]
                texts = engine.generate([prompts[i] for i in indices], decoding, progress=progress)
                cache.put_many((keys[i], text) for i, text in zip(indices, texts, strict=True))
                found.update({keys[i]: text for i, text in zip(indices, texts, strict=True)})
        finally:
            progress.close()
    return [found[key] for key in keys]
