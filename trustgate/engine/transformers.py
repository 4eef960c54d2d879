"""The transformers engine: length-sorted, shared-prefix batches on CPU or GPU (batch_decode)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import torch

from trustgate.engine.base import Decoding, Finished, Messages, Prompt, clean_text
from trustgate.engine.batch_decode import BatchFigures, BatchSpec, generate_streams
from trustgate.engine.planning import plan_streams
from trustgate.models import ModelHandle, evaluation_dtype, load_model, load_tokenizer
from trustgate.util.events import record_event
from trustgate.util.progress import Progress

# Bumped when trustgate's own decoding changes what text comes out (batch_decode,
# prefix_attention): part of the backend id, so cached generations of older code are not reused.
ENGINE_REVISION = 3
# 1 GiB: at 512 MiB, 64 rows of DecodingTrust's targeted stereotype prompts (277 cached positions
# each, the embedded model's 46 KB a position) did not fit, and the engine benchmark's decode
# steps held 43 rows on average instead of 64 (189 steps instead of 126).
CPU_KV_CACHE_BYTES = 1 << 30
GPU_KV_CACHE_SHARE = 0.5  # of the memory free once the model is loaded


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def render_chat(tokenizer: Any, messages: Messages) -> str:
    """The model's own chat template; plain concatenation for a model that has none."""
    chat = [{"role": role, "content": content} for role, content in messages]
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    return "\n\n".join(m["content"] for m in chat) + "\n"


def kv_cache_tokens(model: Any) -> int:
    """How many cached positions one batch may hold: a memory budget in bytes (1 GiB on a CPU,
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
    """A transformers model on CPU or GPU. The tokenizer loads on first `render`, the weights on
    first `generate`; `release` frees the weights and keeps the tokenizer."""

    commits_as_it_goes = True  # each finished stream is reported (`finished`) as it ends

    def __init__(
        self,
        handle: ModelHandle,
        device: str = "cpu",
        batch_size: int = 32,
        trust_remote_code: bool = False,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.handle = handle
        self.device = device
        self.batch_size = batch_size
        self.trust_remote_code = trust_remote_code
        self._max_batch_tokens = max_batch_tokens
        self._tokenizer: Any = None
        self.model: Any = None
        self.generated_tokens = 0  # new tokens produced, stop tokens excluded (benchmarks read it)
        self.figures = BatchFigures()  # all streams' timings and positions (benchmarks read it)

    @classmethod
    def from_model(cls, handle: ModelHandle, model: Any, tokenizer: Any, batch_size: int = 32) -> TransformersEngine:
        """An engine over a model already in memory (benchmarks, tests)."""
        engine = cls(handle, device=str(model.device), batch_size=batch_size)
        engine._tokenizer = tokenizer
        engine._attach(model)
        return engine

    @property
    def backend(self) -> str:
        import transformers

        return f"transformers-{transformers.__version__}+tg{ENGINE_REVISION}-{evaluation_dtype(self.device)}"

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.handle.path, self.trust_remote_code)
        return self._tokenizer

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def render(self, messages: Messages) -> str:
        return render_chat(self.tokenizer, messages)

    def load(self) -> None:
        if self.model is None:
            model, self._tokenizer = load_model(self.handle.path, self.device, self.trust_remote_code)
            self._attach(model)

    def _attach(self, model: Any) -> None:
        self.model = model
        self.max_batch_tokens = self._max_batch_tokens or kv_cache_tokens(model)
        self.parameters = sum(p.numel() for p in model.parameters())  # FLOPs per position: 2 x this
        eos = {self.tokenizer.eos_token_id}
        configured = getattr(model.generation_config, "eos_token_id", None)
        eos.update(configured if isinstance(configured, list) else [configured])
        self.stop_ids = tuple(sorted(i for i in eos if i is not None))
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]

    def release(self) -> None:
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _spec(self, decoding: Decoding) -> BatchSpec:
        return BatchSpec(
            max_new_tokens=decoding.max_new_tokens,
            samples=decoding.samples,
            temperature=decoding.temperature,
            seed=decoding.seed,
            stop_ids=self.stop_ids,
            pad_id=self.pad_id,
            max_rows=self.batch_size,
            max_cached_positions=self.max_batch_tokens,
        )

    @staticmethod
    def _seed(token_ids: list[list[int]], decoding: Decoding) -> int:
        """A stream's sampling seed: from its prompts, not from its position in the run."""
        seed_text = repr(token_ids) + repr(asdict(decoding))
        return int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16) + decoding.seed

    def _generate_streams(
        self, streams: list[list[list[int]]], decoding: Decoding, stream_done: Callable[[int, list[list[str]]], None]
    ) -> None:
        figures = BatchFigures()

        def done(index: int, new_tokens: list[list[int]]) -> None:
            self.generated_tokens += sum(len(tokens) for tokens in new_tokens)
            texts = [clean_text(t) for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
            samples = decoding.samples
            stream_done(index, [texts[i * samples : (i + 1) * samples] for i in range(len(streams[index]))])

        seeds = [self._seed(token_ids, decoding) for token_ids in streams]
        new_tokens = generate_streams(
            self.model, streams, self._spec(decoding), self.handle.name, figures, seeds=seeds, stream_done=done
        )
        self.figures.add(figures)
        generated = sum(len(tokens) for stream in new_tokens for tokens in stream)
        record_event("stream", model=self.handle.name, parameters=self.parameters, streams=len(streams),
                     prompts=sum(len(s) for s in streams), rows=sum(len(s) for s in new_tokens),
                     new_tokens=generated, **asdict(figures))  # fmt: skip

    def generate(
        self,
        prompts: Sequence[Prompt],
        decoding: Decoding,
        progress: Progress | None = None,
        finished: Finished | None = None,
    ) -> list[list[str]]:
        """Every prompt in one decode loop (`generate_streams`): its streams (prompts sharing a
        prefix, `plan_streams`) follow one another through the batch's places."""
        self.load()
        token_ids = self.tokenizer([p.text for p in prompts], add_special_tokens=False)["input_ids"]
        results: list[list[str]] = [[] for _ in prompts]
        pending = plan_streams(token_ids, decoding.samples, self.batch_size)
        while pending:
            reported: set[int] = set()

            def stream_done(
                index: int, texts: list[list[str]], streams: list[list[int]] = pending, reported: set[int] = reported
            ) -> None:
                reported.add(index)
                for prompt, text in zip(streams[index], texts, strict=True):
                    results[prompt] = text
                if finished:
                    finished(streams[index], texts)
                if progress:
                    progress.update(len(streams[index]))

            try:
                self._generate_streams([[token_ids[i] for i in s] for s in pending], decoding, stream_done)
            except Exception as exc:
                if not _is_out_of_memory(exc) or self.batch_size == 1:
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                # Out of memory: the streams not finished again, with half as many rows at once.
                self.batch_size = max(1, self.batch_size // 2)
                pending = [stream for index, stream in enumerate(pending) if index not in reported]
                continue
            pending = []
        return results
