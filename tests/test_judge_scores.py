"""Judge scores are cached per (judge, text) like generations: a toxicity run re-scored after the
entries exist loads no judge model and calls no service, and records judged by Perspective are
re-scored from its stored scores, never silently by another judge."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from trustgate.dimensions import toxicity
from trustgate.dimensions.base import Item, outcome_columns
from trustgate.engine.cache import GenerationCache
from trustgate.evaluation.records import write_records
from trustgate.evaluation.rescore import rescore_file
from trustgate.judges import minilm
from trustgate.judges import toxicity as judges
from trustgate.judges.scores import judge_scores_kept_in, score_key
from trustgate.util.errors import TrustgateError

CONTINUATIONS = [["What a lovely morning for a walk.", "shut up you stupid idiot"], ["and then it rained", ""]]
ITEMS = [Item(id=f"toxic-benign-{i}", messages=(("user", "go on"),)) for i in range(2)]
PERSPECTIVE = judges.PerspectiveJudge.name


def _write(path: Path, judge: str, outcomes: list) -> Path:
    header = {
        "dimension": "toxicity",
        "scenario": "toxic-benign",
        "model": "m",
        "score": toxicity.DIMENSION.metric(outcome_columns(outcomes)),
        "refusal_rate": 0.0,
        "judge": judge,
    }
    write_records(path, header, ITEMS, CONTINUATIONS, outcomes)
    return path


def _no_judge_may_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a judge model was loaded or a service called")

    monkeypatch.setattr(judges.ProfanityCheckJudge, "score", forbidden)
    monkeypatch.setattr(minilm, "_encoder", forbidden)
    monkeypatch.setattr(judges, "_load_pipeline", forbidden)
    monkeypatch.setattr(urllib.request, "urlopen", forbidden)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GenerationCache:
    monkeypatch.setenv("TRUSTGATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    monkeypatch.delenv("TRUSTGATE_TOXICITY_JUDGE", raising=False)
    store = GenerationCache(tmp_path / "cache" / "generations.sqlite")
    yield store
    store.close()


def test_a_rescore_after_the_entries_exist_loads_no_judge(cache, tmp_path, monkeypatch) -> None:
    with judge_scores_kept_in(cache):
        outcomes = toxicity.score_items(ITEMS, CONTINUATIONS)  # the offline judge, for real
    judge = judges.judge_from_env({})
    assert all(score_key(judge.name, t) in cache.get_many([score_key(judge.name, t)]) for t in CONTINUATIONS[0])
    path = _write(tmp_path / "records.jsonl", judge.name, outcomes)
    _no_judge_may_run(monkeypatch)
    result = rescore_file(path)
    assert result.changed_items == 0 and result.score == result.stored_score


def test_perspective_scores_outlive_the_service(cache, tmp_path, monkeypatch) -> None:
    """Scored by Perspective before 2026-12-31; re-scored after it, with no key, offline."""
    stored = {"What a lovely morning for a walk.": 0.05, "shut up you stupid idiot": 0.91, "and then it rained": 0.12}
    cache.put_many((score_key(PERSPECTIVE, text), [repr(value)]) for text, value in stored.items())
    outcomes = [toxicity.item_outcome(t, [stored.get(x, 0.0) for x in t]) for t in CONTINUATIONS]
    path = _write(tmp_path / "records.jsonl", PERSPECTIVE, outcomes)
    _no_judge_may_run(monkeypatch)
    result = rescore_file(path)
    assert result.changed_items == 0 and result.score == pytest.approx(100 * (1 - (0.91 + 0.12) / 2))


def test_a_missing_perspective_score_is_never_filled_by_another_judge(cache, tmp_path, monkeypatch) -> None:
    cache.put_many([(score_key(PERSPECTIVE, "and then it rained"), ["0.05"])])  # the others are missing
    outcomes = [toxicity.item_outcome(t, [0.0] * len(t)) for t in CONTINUATIONS]
    path = _write(tmp_path / "records.jsonl", PERSPECTIVE, outcomes)
    _no_judge_may_run(monkeypatch)
    with pytest.raises(TrustgateError) as failure:
        rescore_file(path)
    message = str(failure.value)
    assert f"records judged by {PERSPECTIVE}" in message and "2 of 3 texts have no stored score" in message
    assert "the judge in force is offline:minilm-ridge" in message and "closes on 2026-12-31" in message


def test_judge_scores_are_keyed_by_the_judge(cache) -> None:
    class Fixed:
        def __init__(self, name: str, value: float) -> None:
            self.name, self.value, self.calls = name, value, 0

        def score(self, texts):
            self.calls += 1
            return [self.value] * len(texts)

    first, second = Fixed("a", 0.25), Fixed("b", 0.75)
    with judge_scores_kept_in(cache):
        assert judges_scores(["x", "x", " "], first) == [0.25, 0.25, 0.0]
        assert judges_scores(["x"], second) == [0.75]  # another judge: its own entry, never a's
        assert judges_scores(["x"], first) == [0.25] and first.calls == 1


def judges_scores(texts, judge):
    from trustgate.judges.scores import judge_scores

    return judge_scores(texts, lambda: judge)


def test_a_gate_run_rescored_from_its_cache_loads_no_judge(run_gate, tiny_llama_dir, cache_root, monkeypatch) -> None:
    """End to end: the gate writes the judge's name in each record header and its scores in the
    cache; `rescore` of those records then answers from the cache alone."""
    run = run_gate("--trust-base-model", str(tiny_llama_dir), "--model", "dense", "-k", "toxicity and nontoxic",
                   "--trust-limit", "2", "--trust-allow-ungated")  # fmt: skip
    assert run.returncode in (0, 1), run.output
    records = sorted((run.report_dir / "records").rglob("toxicity/*.jsonl"))
    assert len(records) == 2, run.output
    monkeypatch.setenv("TRUSTGATE_CACHE", str(cache_root))
    monkeypatch.delenv("TRUSTGATE_TOXICITY_JUDGE", raising=False)
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    default = judges.judge_from_env({}).name
    _no_judge_may_run(monkeypatch)
    for path in records:
        assert json.loads(path.read_text(encoding="utf-8").split("\n", 1)[0])["header"]["judge"] == default
        result = rescore_file(path)
        assert result.n_items == 2 and result.changed_items == 0 and result.score == result.stored_score
