"""Packed prefill and continuous batching on tiny random models of every architecture the
shared-prefix path claims: prompts read without padding, rows of a stream joining the running
batch as others finish, and still the tokens `generate` gives one prompt at a time."""

from __future__ import annotations

import pytest
import torch

from tests.tiny_models import NEVER, VOCAB, generate_alone, tiny_causal_lm
from trustgate.engine import prefix_attention
from trustgate.engine.batch_decode import BatchFigures, BatchSpec, generate_batch, generate_streams
from trustgate.engine.planning import common_prefix_length, distinct_heads
from trustgate.engine.stream_rows import SharedPrefixRows

NEW_TOKENS = 10
# Larger weights than the default make the tokens depend sharply on every position and key
# (a position off by one changes them), so equality with `generate` proves more.
SHARP = 0.5


def _stream(seed: int = 11) -> list[list[int]]:
    """Twelve prompts of one scenario: a shared prefix, groups with a longer head, lone prompts."""
    generator = torch.Generator().manual_seed(seed)

    def tokens(length: int) -> list[int]:
        return torch.randint(4, VOCAB, (length,), generator=generator).tolist()

    prefix = tokens(9)
    prompts = []
    for lengths in ((1, 4, 2), (3, 5), (2, 7, 1)):
        head = tokens(8)
        prompts += [prefix + head + tokens(n) for n in lengths]
    return prompts + [prefix + tokens(n) for n in (6, 13, 2, 9)]


def _spec(stop: int, samples: int = 1, **bounds) -> BatchSpec:
    return BatchSpec(NEW_TOKENS, samples, 0.0, seed=5, stop_ids=(stop,), pad_id=0, min_shared_prefix=4, **bounds)


def _stop_part_way(model, prompts: list[list[int]]) -> int:
    """A stop token that some references produce part-way (rows finish at different steps)."""
    free_run = [generate_alone(model, p, NEW_TOKENS, stop=NEVER) for p in prompts]

    def finishing_steps(token: int) -> set[int]:
        return {row.index(token) if token in row else NEW_TOKENS for row in free_run}

    return max(sorted({t for row in free_run for t in row}), key=lambda t: len(finishing_steps(t)))


@pytest.fixture
def admissions(monkeypatch):
    """(rows still running, rows joining) for every admission that brought rows in."""
    seen: list[tuple[int, int]] = []
    original = SharedPrefixRows.admit

    def admit(self, model, logits):
        running, before = int((self.alive >= 0).sum()), len(self.alive)
        result = original(self, model, logits)
        if len(self.alive) > before:
            seen.append((running, len(self.alive) - before))
        return result

    monkeypatch.setattr(SharedPrefixRows, "admit", admit)
    return seen


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2", "qwen3"])
def test_rows_join_as_others_finish_with_the_tokens_of_one_prompt_at_a_time(model_type, admissions):
    model = tiny_causal_lm(model_type, initializer_range=SHARP)
    prompts = _stream()
    stop = _stop_part_way(model, prompts)
    expected = [generate_alone(model, p, NEW_TOKENS, stop) for p in prompts]
    assert len({len(e) for e in expected}) > 2  # rows finish at several different steps
    figures = BatchFigures()
    assert generate_batch(model, prompts, _spec(stop, max_rows=4), model_type, figures) == expected
    assert admissions[0] == (0, 4)  # the first four places filled at once
    assert any(running > 0 for running, _ in admissions[1:])  # later rows joined a running batch
    assert sum(joined for _, joined in admissions) == len(prompts)
    assert figures.decode_rows <= 4 * figures.decode_steps


def test_the_kv_budget_counts_the_shared_prefix_once(admissions):
    model = tiny_causal_lm("llama", initializer_range=SHARP)
    prompts = [_stream()[i] for i in (0, 3, 9)]  # three groups: only the 9-token prefix is shared
    assert common_prefix_length(prompts) == 9
    tails = [len(p) - 9 for p in prompts]
    # Room for the prefix once and three rows' own tokens; a prefix copy per row would not fit.
    budget = 9 + 3 * (max(tails) + NEW_TOKENS)
    assert 3 * (max(len(p) for p in prompts) + NEW_TOKENS) > budget
    expected = [generate_alone(model, p, NEW_TOKENS, NEVER) for p in prompts]
    assert generate_batch(model, prompts, _spec(NEVER, max_cached_positions=budget), "tiny") == expected
    assert admissions == [(0, 3)]
    admissions.clear()
    assert generate_batch(model, prompts, _spec(NEVER, max_cached_positions=budget - 1), "tiny") == expected
    assert admissions[0] == (0, 2)  # one position short: the third row waits


def test_prefill_computes_real_positions_only():
    model = tiny_causal_lm("llama", initializer_range=SHARP)
    prompts = _stream()
    figures = BatchFigures()
    generate_batch(model, prompts, _spec(NEVER, max_rows=len(prompts)), "tiny", figures)
    tails = [p[9:] for p in prompts]
    heads, group_of = distinct_heads(tails, 4)
    real = 9 + sum(len(h) for h in heads) + sum(len(t) - len(heads[g]) for t, g in zip(tails, group_of, strict=True))
    assert (figures.prompt_positions, figures.padding_positions) == (real, 0)
    copied = BatchFigures()
    generate_batch(model, prompts, BatchSpec(NEW_TOKENS, 1, 0.0, 5, (NEVER,), 0, 4, False), "tiny", copied)
    assert copied.padding_positions > 0  # the reference path pads every row to the widest


def test_samples_of_joining_rows_are_reproducible_and_greedy_samples_agree():
    model = tiny_causal_lm("qwen2", initializer_range=SHARP)
    prompts = _stream(seed=12)[:6]
    sampled = BatchSpec(NEW_TOKENS, 2, 1.0, seed=7, stop_ids=(NEVER,), pad_id=0, min_shared_prefix=4, max_rows=3)
    first = generate_batch(model, prompts, sampled, "tiny")
    assert first == generate_batch(model, prompts, sampled, "tiny")
    assert len({tuple(row) for row in first}) > len(prompts)
    greedy = generate_batch(model, prompts, _spec(NEVER, samples=2, max_rows=3), "tiny")
    expected = [generate_alone(model, p, NEW_TOKENS, NEVER) for p in prompts]
    assert greedy == [row for row in expected for _ in range(2)]


def test_the_copied_cache_path_keeps_fixed_batches_within_the_bounds():
    import transformers

    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=VOCAB, n_positions=128)
    ).eval()
    prompts = _stream()
    expected = [generate_alone(gpt2, p, NEW_TOKENS, NEVER) for p in prompts]
    assert generate_batch(gpt2, prompts, _spec(NEVER, max_rows=5, max_cached_positions=200), "gpt2") == expected


@pytest.mark.parametrize("max_rows", [2, 5, 7, 9, 11])
def test_any_number_of_places_gives_the_same_tokens(max_rows):
    # Finished rows may stay in the batch for a while (fed padding) before they are dropped,
    # and rows joined at different steps finish at different steps: every mix must hold.
    model = tiny_causal_lm("llama", initializer_range=SHARP)
    prompts = _stream(seed=13)
    stop = _stop_part_way(model, prompts)
    expected = [generate_alone(model, p, NEW_TOKENS, stop) for p in prompts]
    assert generate_batch(model, prompts, _spec(stop, max_rows=max_rows), "tiny") == expected


def test_a_finished_row_kept_in_the_batch_stays_inside_its_buffer():
    model = tiny_causal_lm("llama", initializer_range=SHARP)
    prompts = [p for p in _stream(seed=14)[:2]]
    spec = _spec(NEVER, max_rows=2)
    with torch.inference_mode(), prefix_attention.prefix_attention(model):
        rows = SharedPrefixRows(model, [prompts], spec, BatchFigures())
        capacity = rows.cache.capacity
        for _ in range(capacity + 3):  # more steps than any row has room for
            rows.step(model, torch.tensor([5, 6]))
    assert int(rows.cache.lengths.max()) == capacity - 1


def _streams() -> list[list[list[int]]]:
    """Three streams of one call, each with its own shared prefix (DecodingTrust's three
    stereotype system prompts, in small), plus a stream of a single prompt (no shared prefix)."""
    return [_stream(seed=21)[:7], _stream(seed=22)[3:], _stream(seed=23)[:5], [_stream(seed=24)[0]]]


@pytest.fixture
def mixed_steps(monkeypatch):
    """For every decode step, how many streams' rows it held."""
    seen: list[int] = []
    original = prefix_attention.PrefixCache.begin_step

    def begin_step(self):
        original(self)
        seen.append(len(self.step_runs))

    monkeypatch.setattr(prefix_attention.PrefixCache, "begin_step", begin_step)
    return seen


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2", "qwen3"])
def test_rows_of_several_streams_decode_together_with_the_tokens_of_one_prompt_at_a_time(model_type, mixed_steps):
    model = tiny_causal_lm(model_type, initializer_range=SHARP)
    streams = _streams()
    stop = _stop_part_way(model, [p for stream in streams for p in stream])
    expected = [[generate_alone(model, p, NEW_TOKENS, stop) for p in stream] for stream in streams]
    ended: list[int] = []
    produced = generate_streams(
        model, streams, _spec(stop, max_rows=6), model_type,
        stream_done=lambda index, tokens: ended.append(index),
    )  # fmt: skip
    assert produced == expected
    assert sorted(ended) == [0, 1, 2, 3]  # each stream reported once, as it ended
    assert max(mixed_steps) >= 2  # some decode steps held rows of two streams (two prefixes)


def test_each_stream_is_reported_with_its_own_rows_as_it_ends():
    model = tiny_causal_lm("llama", initializer_range=SHARP)
    streams = _streams()
    expected = [[generate_alone(model, p, NEW_TOKENS, NEVER) for p in stream] for stream in streams]
    reports: list[tuple[int, list[list[int]]]] = []
    generate_streams(model, streams, _spec(NEVER, max_rows=4), "tiny", stream_done=lambda i, t: reports.append((i, t)))
    assert [index for index, _ in reports] == [0, 1, 2, 3]  # same lengths: streams end in order
    assert [tokens for _, tokens in reports] == expected


def test_the_kv_budget_counts_each_running_prefix_once(admissions):
    model = tiny_causal_lm("llama", initializer_range=SHARP)
    first, second = _stream(seed=25)[:2], _stream(seed=26)[:2]
    prefixes = [common_prefix_length(first), common_prefix_length(second)]
    tails = [len(p) - prefix for stream, prefix in zip((first, second), prefixes, strict=True) for p in stream]
    width = max(tails) + NEW_TOKENS
    expected = [[generate_alone(model, p, NEW_TOKENS, NEVER) for p in stream] for stream in (first, second)]
    # Room for both prefixes and four rows: all four run at once.
    budget = sum(prefixes) + 4 * width
    assert generate_streams(model, [first, second], _spec(NEVER, max_cached_positions=budget), "tiny") == expected
    assert admissions == [(0, 4)]
    admissions.clear()
    # One position short: the second stream's last row waits for a place.
    assert generate_streams(model, [first, second], _spec(NEVER, max_cached_positions=budget - 1), "tiny") == expected
    assert admissions[0] == (0, 3)


def test_with_every_row_in_place_a_streams_samples_do_not_depend_on_the_streams_beside_it():
    model = tiny_causal_lm("qwen2", initializer_range=SHARP)
    streams = _streams()[:2]
    sampled = BatchSpec(NEW_TOKENS, 2, 1.0, seed=7, stop_ids=(NEVER,), pad_id=0, min_shared_prefix=4)
    together = generate_streams(model, streams, sampled, "tiny", seeds=[3, 4])
    assert together == generate_streams(model, streams, sampled, "tiny", seeds=[3, 4])
    alone = generate_streams(model, streams[1:], sampled, "tiny", seeds=[4])
    assert together[1] == alone[0]  # all rows at once: the same draws with or without stream 0


def test_a_finished_streams_prefix_is_freed():
    model = tiny_causal_lm("llama", initializer_range=SHARP)
    streams = _streams()[:3]
    with torch.inference_mode(), prefix_attention.prefix_attention(model):
        rows = SharedPrefixRows(model, streams, _spec(NEVER, max_rows=len(streams[0])), BatchFigures())
        assert rows.streams[0].prefix is not None and rows.streams[1].prefix is None
        rows.keep(torch.zeros(0, dtype=torch.long))  # stream 0's rows all done
        assert rows.streams[0].prefix is None
        assert not rows.cache.prefixes  # nothing else holds its keys and values
