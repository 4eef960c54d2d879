"""The batched engine on a tiny random Llama (no download): same tokens as `generate`, one prompt
at a time; batch planning; NaN guard; the generation cache's keys and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.tiny_models import NEVER, VOCAB, generate_alone, tiny_causal_lm
from trustgate.engine import Decoding, Prompt
from trustgate.engine.batch_decode import BatchSpec, generate_batch
from trustgate.engine.cache import GenerationCache, cached_generate
from trustgate.engine.planning import common_prefix_length, plan_batches
from trustgate.models import ModelHandle
from trustgate.util.errors import ModelOutputError


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_causal_lm("llama")


def _prompts(shared: int, suffix_lengths: tuple[int, ...], seed: int = 1) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    prefix = torch.randint(4, VOCAB, (shared,), generator=generator).tolist()
    return [prefix + torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in suffix_lengths]


def _spec(stop: int, new_tokens: int = 12, samples: int = 1, temperature: float = 0.0) -> BatchSpec:
    return BatchSpec(new_tokens, samples, temperature, seed=0, stop_ids=(stop,), pad_id=0, min_shared_prefix=4)


@pytest.mark.parametrize("shared", [0, 20])
def test_batch_matches_one_prompt_at_a_time(tiny_model, shared):
    prompts = _prompts(shared, (3, 7, 1, 5, 9, 2))
    # A stop token that the references produce part-way, so rows finish early and leave the batch.
    free_run = [generate_alone(tiny_model, p, 12, stop=NEVER) for p in prompts]
    stop = next(t for row in free_run for t in row if any(t not in other for other in free_run))
    expected = [generate_alone(tiny_model, p, 12, stop) for p in prompts]
    assert any(len(e) < 12 for e in expected) and any(len(e) == 12 for e in expected)
    assert generate_batch(tiny_model, prompts, _spec(stop), "tiny") == expected


def test_samples_are_reproducible_and_per_prompt(tiny_model):
    prompts = _prompts(20, (3, 6))
    first = generate_batch(tiny_model, prompts, _spec(stop=NEVER, samples=3, temperature=1.0), "tiny")
    second = generate_batch(tiny_model, prompts, _spec(stop=NEVER, samples=3, temperature=1.0), "tiny")
    assert first == second
    assert len(first) == 6 and all(len(row) == 12 for row in first)
    assert len({tuple(row) for row in first}) > 1  # sampling, not six copies of one answer


def test_non_finite_logits_name_the_model(tiny_model):
    import copy

    broken = copy.deepcopy(tiny_model)
    with torch.no_grad():
        broken.model.norm.weight.fill_(float("nan"))
    with pytest.raises(ModelOutputError, match="broken-variant"):
        generate_batch(broken, _prompts(20, (3, 4)), _spec(stop=3), "broken-variant")


def test_plan_batches_groups_shared_prefixes_within_limits():
    group_a = _prompts(30, (2, 5, 3, 4, 6, 1), seed=1)
    group_b = _prompts(30, (4, 2, 7, 3, 5, 2), seed=2)
    token_ids = [p for pair in zip(group_a, group_b, strict=True) for p in pair]  # interleaved
    batches = plan_batches(token_ids, samples=1, batch_size=8, max_batch_tokens=10_000, max_new_tokens=16)
    assert sorted(i for b in batches for i in b) == list(range(12))
    for batch in batches:
        assert common_prefix_length([token_ids[i] for i in batch]) >= 30  # never mixes the two groups
    small = plan_batches(token_ids, samples=2, batch_size=4, max_batch_tokens=10_000, max_new_tokens=16)
    assert all(len(b) * 2 <= 4 for b in small)
    budget = plan_batches(token_ids, samples=1, batch_size=64, max_batch_tokens=3 * (37 + 16), max_new_tokens=16)
    assert all(len(b) * (max(len(token_ids[i]) for i in b) + 16) <= 3 * 53 for b in budget)


@given(st.lists(st.lists(st.integers(0, 3), max_size=6), max_size=6))
def test_common_prefix_length_is_the_longest_shared_start(sequences):
    n = common_prefix_length(sequences)
    assert all(s[:n] == sequences[0][:n] for s in sequences)
    if sequences and all(len(s) > n for s in sequences):
        assert len({s[n] for s in sequences}) > 1


class CountingEngine:
    """Echoes prompts; counts prompts generated; fails after `fail_after` chunks when set."""

    def __init__(self, handle: ModelHandle, fail_after: int | None = None, backend: str = "fake-1.0-float32") -> None:
        self.handle = handle
        self.backend = backend
        self.prompts: list[str] = []
        self.calls = 0
        self.fail_after = fail_after

    def generate(self, prompts, decoding, progress=None, finished=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed half-way")
        self.calls += 1
        self.prompts.extend(p.text for p in prompts)
        return [[f"answer to {p.text}"] for p in prompts]


def _texts(*texts: str) -> list[Prompt]:
    return [Prompt(text) for text in texts]


def test_interrupted_generation_resumes_without_redoing_finished_chunks(tmp_path: Path):
    cache = GenerationCache(tmp_path / "generations.sqlite")
    handle = ModelHandle("dense", tmp_path, "f" * 64)
    prompts = _texts(*(f"prompt {i}" for i in range(10)))
    interrupted = CountingEngine(handle, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        cached_generate(interrupted, prompts, Decoding(8), cache, "test", chunk=3)
    assert len(interrupted.prompts) == 6 and len(cache) == 6
    resumed = CountingEngine(handle)
    stats: dict[str, int] = {}
    result = cached_generate(resumed, prompts, Decoding(8), cache, "test", chunk=3, stats=stats)
    assert sorted(resumed.prompts) == sorted({p.text for p in prompts} - set(interrupted.prompts))
    assert stats["generated"] == 4 and stats["seconds"] >= 0
    assert result == [[f"answer to {p.text}"] for p in prompts]


class StreamingEngine(CountingEngine):
    """Takes every miss at once and reports finished prompts two at a time, as the transformers
    engine reports each finished stream; killed after `fail_after` reports when set."""

    commits_as_it_goes = True

    def generate(self, prompts, decoding, progress=None, finished=None):
        self.calls += 1
        self.sizes = [*getattr(self, "sizes", []), len(prompts)]
        for start in range(0, len(prompts), 2):
            if self.fail_after is not None and start // 2 >= self.fail_after:
                raise KeyboardInterrupt("killed half-way")
            self.prompts.extend(p.text for p in prompts[start : start + 2])
            finished(list(range(start, min(start + 2, len(prompts)))),
                     [[f"answer to {p.text}"] for p in prompts[start : start + 2]])  # fmt: skip
        return [[f"answer to {p.text}"] for p in prompts]


def test_an_engine_that_commits_as_it_goes_gets_every_miss_at_once_and_loses_only_unfinished_work(tmp_path: Path):
    cache = GenerationCache(tmp_path / "generations.sqlite")
    handle = ModelHandle("dense", tmp_path, "f" * 64)
    prompts = _texts(*(f"prompt {i}" for i in range(10)))
    interrupted = StreamingEngine(handle, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        cached_generate(interrupted, prompts, Decoding(8), cache, "test", chunk=3)
    assert interrupted.sizes == [10]  # no chunks: the engine's decode batches can stay full
    assert len(cache) == 6  # the three finished pairs were committed before the kill
    resumed = StreamingEngine(handle)
    stats: dict[str, int] = {}
    result = cached_generate(resumed, prompts, Decoding(8), cache, "test", chunk=3, stats=stats)
    assert resumed.sizes == [4] and stats["generated"] == 4
    assert result == [[f"answer to {p.text}"] for p in prompts]


def test_same_name_different_weights_never_share_generations(tmp_path: Path):
    cache = GenerationCache(tmp_path / "generations.sqlite")
    prompts = _texts("a", "b")
    first = CountingEngine(ModelHandle("gptq4", tmp_path, "1" * 64))
    second = CountingEngine(ModelHandle("gptq4", tmp_path, "2" * 64))
    cached_generate(first, prompts, Decoding(8), cache, "t")
    cached_generate(second, prompts, Decoding(8), cache, "t")
    assert first.prompts == second.prompts == ["a", "b"]
    again = CountingEngine(ModelHandle("renamed", tmp_path, "1" * 64))
    cached_generate(again, prompts, Decoding(8), cache, "t")
    assert again.prompts == []  # the weights, not the name, identify the model


def test_backend_and_decoding_are_part_of_the_key(tmp_path: Path):
    cache = GenerationCache(tmp_path / "generations.sqlite")
    handle = ModelHandle("dense", tmp_path, "1" * 64)
    runs = [
        (Decoding(8), "transformers-5.17.0-float32"),
        (Decoding(8), "transformers-5.17.0-bfloat16"),
        (Decoding(8), "transformers-5.18.0-float32"),
        (Decoding(8), "vllm-0.32.0-float32"),
        (Decoding(16), "transformers-5.17.0-float32"),
        (Decoding(8, samples=2, temperature=1.0), "transformers-5.17.0-float32"),
    ]
    for decoding, backend in runs:
        engine = CountingEngine(handle, backend=backend)
        cached_generate(engine, _texts("x"), decoding, cache, "t")
        assert engine.prompts == ["x"]


def test_the_engine_names_its_backend_and_loads_weights_only_to_generate(tiny_llama_dir: Path):
    import transformers

    from trustgate.engine.transformers import ENGINE_REVISION, TransformersEngine

    engine = TransformersEngine(ModelHandle("dense", tiny_llama_dir, "1" * 64), device="cpu")
    assert engine.backend == f"transformers-{transformers.__version__}+tg{ENGINE_REVISION}-float32"
    assert engine.render((("user", "hi"),)).endswith("<|im_start|>assistant\n") and not engine.loaded
    (texts,) = engine.generate(_texts(engine.render((("user", "hi"),))), Decoding(4))
    assert engine.loaded and len(texts) == 1
    engine.release()
    assert not engine.loaded


def test_kv_budget_is_bytes_over_the_models_bytes_per_position(tiny_model):
    from trustgate.engine.transformers import CPU_KV_CACHE_BYTES, kv_cache_tokens

    # 2 layers x (keys + values) x 2 KV heads x head_dim 8 x 4 bytes (float32) = 256 bytes per position
    assert kv_cache_tokens(tiny_model) == CPU_KV_CACHE_BYTES // 256
    assert kv_cache_tokens(tiny_model.to(torch.bfloat16)) == CPU_KV_CACHE_BYTES // 128
    tiny_model.to(torch.float32)


def test_each_engine_call_logs_its_timings_positions_and_rows(tiny_llama_dir: Path, tmp_path: Path, monkeypatch):
    import json

    from trustgate.engine.transformers import TransformersEngine

    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("TRUSTGATE_EVENTS", str(events))
    engine = TransformersEngine(ModelHandle("dense", tiny_llama_dir, "1" * 64), device="cpu", batch_size=2)
    chats = [
        engine.render((("system", "You are a careful assistant. " * 4), ("user", f"Question {i}?"))) for i in range(5)
    ]
    engine.generate(_texts(*chats), Decoding(6))
    streams = [e for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "stream"]
    assert len(streams) == 1 and streams[0]["prompts"] == 5 and streams[0]["model"] == "dense"
    (stream,) = streams
    assert stream["streams"] == 1  # one shared prefix
    token_ids = engine.tokenizer(chats, add_special_tokens=False)["input_ids"]
    # Packed prefill: the shared prefix once, then each prompt's own tokens, no padding.
    shared = common_prefix_length(token_ids)
    assert stream["prompt_positions"] == shared + sum(len(ids) - shared for ids in token_ids)
    assert stream["padding_positions"] == 0
    assert stream["new_tokens"] == engine.generated_tokens > 0
    assert stream["parameters"] == sum(p.numel() for p in engine.model.parameters())
    assert stream["decode_steps"] > 0 and stream["decode_rows"] <= 2 * stream["decode_steps"]  # batch_size 2
    assert stream["prefill_seconds"] > 0 and stream["decode_seconds"] > 0


def test_the_engine_reports_each_finished_stream_so_the_cache_commits_it(tiny_llama_dir: Path, tmp_path: Path):
    from trustgate.engine.transformers import TransformersEngine

    engine = TransformersEngine(ModelHandle("dense", tiny_llama_dir, "1" * 64), device="cpu", batch_size=2)
    chats = [
        engine.render((("system", f"System prompt {name}. " * 6), ("user", f"Q{i}?")))
        for name in "AB"
        for i in range(3)
    ]
    reported: list[tuple[list[int], list[list[str]]]] = []
    texts = engine.generate(_texts(*chats), Decoding(4), finished=lambda done, out: reported.append((done, out)))
    assert len(reported) == 2  # two system prompts: two streams, each reported when it ended
    assert sorted(i for done, _ in reported for i in done) == list(range(6))
    assert all(texts[i] == out for done, outs in reported for i, out in zip(done, outs, strict=True))
    cache = GenerationCache(tmp_path / "generations.sqlite")
    committed: list[int] = []
    original = cache.put_many
    cache.put_many = lambda entries: (committed.append(len(list(entries))), original([]))[1]  # counts commits
    cached_generate(engine, _texts(*chats), Decoding(4), cache, "t", chunk=2)
    assert committed[:2] == [3, 3]  # per stream, not per chunk of 2
