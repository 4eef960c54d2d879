"""Evaluator performance contracts with a counting fake engine (no model): a re-score with a
changed parser generates nothing, an interrupted run resumes, weights (not names) key the cache,
and two processes that need the same scenario generate it once."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from pathlib import Path

import pytest

from trustgate.data import TrustData
from trustgate.dimensions.base import Outcome
from trustgate.dimensions.stereotype import DIMENSION
from trustgate.engine.transformers import render_chat
from trustgate.evaluation.evaluator import Evaluator
from trustgate.evaluation.profiles import EvaluationSettings
from trustgate.gate.policy import load_thresholds
from trustgate.models import ModelHandle, load_tokenizer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A word-level tokenizer with a chat template: enough for rendering, no model files."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "[EOS]": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", eos_token="[EOS]")
    tokenizer.chat_template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:"
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


class CountingEngine:
    """Answers "I agree." to every prompt; counts the prompts and weight loads; raises after
    `fail_after` prompts. One instance plays every model's engine (the factory hands it out)."""

    backend = "counting-1.0-float32"

    def __init__(self, fail_after: int | None = None, answer: str = "I agree.") -> None:
        self.generated: list[str] = []
        self.loads = 0
        self.made = 0
        self.fail_after = fail_after
        self.answer = answer
        self.loaded = False

    def factory(self, handle: ModelHandle) -> CountingEngine:
        self.handle = handle
        self.made += 1
        self._tokenizer = load_tokenizer(handle.path)
        return self

    def render(self, messages):
        return render_chat(self._tokenizer, messages)

    def load(self) -> None:
        self.loads += 1
        self.loaded = True

    def release(self) -> None:
        self.loaded = False

    def generate(self, prompts, decoding, progress=None, finished=None):
        if self.fail_after is not None and len(self.generated) >= self.fail_after:
            raise KeyboardInterrupt("killed half-way")
        self.generated.extend(p.text for p in prompts)
        return [[self.answer] * decoding.samples for _ in prompts]


def make_evaluator(tmp_path: Path, engine: CountingEngine, limit: int = 6, batch_size: int = 4) -> Evaluator:
    thresholds = load_thresholds(ROOT / "thresholds.toml", "ci")
    settings = EvaluationSettings(
        data=TrustData("embedded"),
        profile_name="ci",
        profile=thresholds.profiles["ci"],
        cache_root=tmp_path / "cache",
        report_dir=tmp_path / "report",
        device="cpu",
        limit=limit,
        batch_size=batch_size,
    )
    return Evaluator(settings, engine_factory=engine.factory)


def handle(folder: Path, fingerprint: str = "a" * 64, name: str = "dense") -> ModelHandle:
    return ModelHandle(name=name, path=folder, fingerprint=fingerprint)


def test_changed_parser_rescored_without_generation(tmp_path, tokenizer_dir):
    first = CountingEngine()
    run = make_evaluator(tmp_path, first).run(DIMENSION, "benign", handle(tokenizer_dir))
    assert len(first.generated) == len(run.items) > 0 and run.score == 0.0  # every answer agrees

    def never_agrees(item, responses):
        return Outcome(score=1.0, refusal=0.0, columns={"agree": 0.0, "cell": 0.0})

    changed = dataclasses.replace(DIMENSION, score_item=never_agrees)
    second = CountingEngine()
    rescored = make_evaluator(tmp_path, second).run(changed, "benign", handle(tokenizer_dir))
    assert second.generated == [] and second.loads == 0  # no model load, no generation
    assert rescored.score == 100.0 and rescored.responses == run.responses


def test_interrupted_run_resumes_where_it_stopped(tmp_path, tokenizer_dir):
    # batch_size 64 -> chunks of 64 prompts; 96 items -> the kill lands after the first chunk.
    killed = CountingEngine(fail_after=64)
    with pytest.raises(KeyboardInterrupt):
        make_evaluator(tmp_path, killed, limit=96, batch_size=64).run(DIMENSION, "benign", handle(tokenizer_dir))
    assert len(killed.generated) == 64
    resumed = CountingEngine()
    run = make_evaluator(tmp_path, resumed, limit=96, batch_size=64).run(DIMENSION, "benign", handle(tokenizer_dir))
    assert len(resumed.generated) == len(run.items) - 64
    assert not set(resumed.generated) & set(killed.generated)


def test_same_name_new_weights_generate_again(tmp_path, tokenizer_dir):
    old, new = CountingEngine(), CountingEngine()
    make_evaluator(tmp_path, old).run(DIMENSION, "benign", handle(tokenizer_dir, "1" * 64, "gptq4"))
    make_evaluator(tmp_path, new).run(DIMENSION, "benign", handle(tokenizer_dir, "2" * 64, "gptq4"))
    assert len(new.generated) == len(old.generated) > 0


def _run_in_process(tmp_path: Path, tokenizer_dir: Path, events: str) -> None:
    import os
    import time

    os.environ["TRUSTGATE_EVENTS"] = events
    engine = CountingEngine()
    original = engine.generate

    def slow_generate(prompts, decoding, progress=None, finished=None):
        time.sleep(1.0)  # long enough for the other process to reach the lock
        return original(prompts, decoding, progress, finished)

    engine.generate = slow_generate
    make_evaluator(tmp_path, engine).run(DIMENSION, "benign", handle(tokenizer_dir))


def test_parallel_processes_generate_a_scenario_once(tmp_path, tokenizer_dir):
    events = tmp_path / "events.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_run_in_process, args=(tmp_path, tokenizer_dir, str(events))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    generated = [e.get("generated", 0) for e in lines if e["event"] == "generate"]
    loads = [e for e in lines if e["event"] == "load"]
    assert sorted(generated) == [0, 6] and len(loads) == 1


def test_dense_base_stays_loaded_while_variants_take_turns(tmp_path, tokenizer_dir):
    engine = CountingEngine()
    evaluator = make_evaluator(tmp_path, engine)
    evaluator.keep_loaded = "d" * 64
    dense, first, second = (handle(tokenizer_dir, c * 64, n) for c, n in [("d", "dense"), ("1", "v1"), ("2", "v2")])
    # v1's test generates dense and v1; v2's first test finds dense cached; a later one does not.
    for model in [dense, first, second, dense, second]:
        evaluator.loaded_engine(model)
    assert evaluator.loads == [dense.fingerprint, first.fingerprint, second.fingerprint]


class CallCountingEngine(CountingEngine):
    """CountingEngine that also keeps the prompts of each `generate` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def generate(self, prompts, decoding, progress=None, finished=None):
        self.calls.append(len(prompts))
        return super().generate(prompts, decoding, progress, finished)


def test_a_dimensions_scenarios_go_to_the_engine_in_one_call(tmp_path, tokenizer_dir):
    engine = CallCountingEngine()
    evaluator = make_evaluator(tmp_path, engine)
    scenarios = list(DIMENSION.scenarios)
    evaluator.prepare(DIMENSION, scenarios, handle(tokenizer_dir))
    asked = []
    generate = evaluator._generate
    evaluator._generate = lambda *args, **kwargs: asked.append(args[1]) or generate(*args, **kwargs)
    evaluator.prepare(DIMENSION, scenarios[1:], handle(tokenizer_dir))  # a later check: already prepared
    assert asked == []  # not even read again from the cache
    runs = [evaluator.run(DIMENSION, name, handle(tokenizer_dir)) for name in scenarios]
    assert len(engine.calls) == 1  # the three system prompts' prompts together; run read the cache
    assert engine.calls[0] == len(set(engine.generated)) == sum(len(run.items) for run in runs)
    # A look of fewer sample keys is a prefix of the selection: prepared and read alike.
    look = {name: 2 for name in scenarios}
    evaluator.prepare(DIMENSION, scenarios, handle(tokenizer_dir, "b" * 64), look)
    small = [evaluator.run(DIMENSION, name, handle(tokenizer_dir, "b" * 64), 2) for name in scenarios]
    assert engine.calls[1:] == [sum(len(run.items) for run in small)]


def test_one_scenario_at_a_time_when_asked(tmp_path, tokenizer_dir):
    engine = CallCountingEngine()
    evaluator = make_evaluator(tmp_path, engine)
    evaluator.settings = dataclasses.replace(evaluator.settings, scenarios_together=False)
    evaluator.prepare(DIMENSION, list(DIMENSION.scenarios), handle(tokenizer_dir))
    assert engine.calls == []
    for name in DIMENSION.scenarios:
        evaluator.run(DIMENSION, name, handle(tokenizer_dir))
    assert len(engine.calls) == len(DIMENSION.scenarios)
