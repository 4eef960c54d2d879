"""Shared-prefix attention against transformers' own attention, on tiny random models of every
architecture it claims: same greedy tokens as `generate` one prompt at a time, same logits as
the copied-cache path, with a batch-wide prefix, groups of prompts that share a longer head,
lone prompts, samples, and rows that finish early."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.tiny_models import NEVER, VOCAB, generate_alone, tiny_causal_lm
from trustgate.engine import prefix_attention
from trustgate.engine.batch_decode import BatchFigures, BatchSpec, generate_batch
from trustgate.engine.planning import distinct_heads
from trustgate.engine.stream_rows import CopiedCacheRows, SharedPrefixRows


def _random(generator: torch.Generator, length: int) -> list[int]:
    return torch.randint(4, VOCAB, (length,), generator=generator).tolist()


def _layered_prompts(seed: int = 3) -> list[list[int]]:
    """A batch-wide prefix; two groups sharing a longer head each; two lone prompts."""
    generator = torch.Generator().manual_seed(seed)
    prefix = _random(generator, 9)
    prompts = []
    for group_size in (3, 2):
        head = _random(generator, 11)
        prompts += [prefix + head + _random(generator, n) for n in (1, 4, 2)[:group_size]]
    prompts += [prefix + _random(generator, 6), prefix + _random(generator, 13)]
    return prompts


def _spec(stop: int, samples: int = 1, temperature: float = 0.0, shared: bool = True) -> BatchSpec:
    return BatchSpec(
        10,
        samples,
        temperature,
        seed=5,
        stop_ids=(stop,),
        pad_id=0,
        min_shared_prefix=4,
        shared_prefix_attention=shared,
    )


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2", "qwen3"])
def test_greedy_tokens_match_generate_one_prompt_at_a_time(model_type):
    model = tiny_causal_lm(model_type)
    prompts = _layered_prompts()
    assert prefix_attention.supports(model, 64)
    free_run = [generate_alone(model, p, 10, stop=NEVER) for p in prompts]
    # A stop token the references produce part-way, so rows leave the batch early.
    stop = next(t for row in free_run for t in row if any(t not in other for other in free_run))
    expected = [generate_alone(model, p, 10, stop) for p in prompts]
    assert any(len(e) < 10 for e in expected)
    assert generate_batch(model, prompts, _spec(stop), model_type) == expected


@pytest.mark.parametrize("model_type", ["llama", "qwen3"])
def test_first_logits_match_the_copied_cache_path(model_type):
    model = tiny_causal_lm(model_type)
    prompts = _layered_prompts(seed=4)
    with torch.inference_mode():
        with prefix_attention.prefix_attention(model):
            shared = SharedPrefixRows(model, [prompts], _spec(NEVER, samples=2), BatchFigures()).first_logits
        copied = CopiedCacheRows(model, [prompts], _spec(NEVER, samples=2), BatchFigures()).first_logits
    torch.testing.assert_close(shared, copied, atol=1e-5, rtol=1e-4)


def test_sampled_rows_match_the_copied_cache_path():
    model = tiny_causal_lm("llama")
    prompts = _layered_prompts(seed=6)
    shared = generate_batch(model, prompts, _spec(NEVER, samples=3, temperature=1.0), "tiny")
    copied = generate_batch(model, prompts, _spec(NEVER, samples=3, temperature=1.0, shared=False), "tiny")
    assert shared == copied
    assert len({tuple(row) for row in shared}) > len(prompts)  # samples differ within a prompt


def test_attention_is_restored_after_the_batch():
    model = tiny_causal_lm("llama")
    before = model.config._attn_implementation
    generate_batch(model, _layered_prompts(), _spec(NEVER), "tiny")
    assert model.config._attn_implementation == before


def test_only_full_attention_architectures_qualify():
    assert prefix_attention.supports(tiny_causal_lm("llama"), 10_000)
    windowed = tiny_causal_lm("mistral", sliding_window=16)
    assert prefix_attention.supports(windowed, 16)
    assert not prefix_attention.supports(windowed, 17)  # the window would hide early tokens
    import transformers

    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=VOCAB))
    assert not prefix_attention.supports(gpt2, 10)


def test_unsupported_architecture_still_generates_through_the_copied_cache():
    import transformers

    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=VOCAB, n_positions=128)
    ).eval()
    prompts = _layered_prompts()
    expected = [generate_alone(gpt2, p, 10, stop=NEVER) for p in prompts]
    assert generate_batch(gpt2, prompts, _spec(NEVER), "gpt2") == expected


@given(st.lists(st.lists(st.integers(0, 2), min_size=1, max_size=8), min_size=1, max_size=10), st.integers(1, 4))
def test_distinct_heads_cover_every_row(tails, min_length):
    heads, group_of = distinct_heads(tails, min_length)
    assert len(group_of) == len(tails)
    assert sorted(set(group_of)) == list(range(len(heads)))
    for tail, group in zip(tails, group_of, strict=True):
        head = heads[group]
        assert tail[: len(head)] == head  # the head is the row's own start
        assert len(tail) > len(head)  # at least one token is left to run per row
    for group, head in enumerate(heads):
        if group_of.count(group) > 1:
            assert len(head) >= min_length


def test_prompts_read_in_small_chunks_give_the_same_tokens():
    model = tiny_causal_lm("llama")
    generator = torch.Generator().manual_seed(8)
    # No batch-wide prefix; a one-token prompt whose head is empty (all padding while heads run).
    prompts = [_random(generator, n) for n in (1, 9, 14)] + [[5, 6, 7, 8, 9, *_random(generator, n)] for n in (3, 6)]
    expected = [generate_alone(model, p, 10, stop=NEVER) for p in prompts]
    spec = BatchSpec(10, 1, 0.0, seed=5, stop_ids=(NEVER,), pad_id=0, min_shared_prefix=4, prefill_tokens=3)
    assert generate_batch(model, prompts, spec, "tiny") == expected
