"""Judge scores cached per (judge name, text), like generations, so that a re-score after the
entries exist loads no judge model and calls no service, and a run scored by one judge is never
silently re-scored by another.

The store is the run's generation cache (handed in by the evaluator or the re-score command with
`judge_scores_kept_in`), under keys of their own: digest("judge score", judge name, text). The
judge's name holds what computes it (package or model id, version, fingerprint), so a new model
file or version is a new judge with entries of its own.

`judged_as_recorded(name)` pins the judge to the one records were scored with: its stored scores
are used, and a text without one is scored only if the environment's judge is that same judge;
otherwise it is an error naming the judge (Perspective's scores after 2026-12-31, for instance,
exist only in the cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from trustgate.judges.toxicity import JUDGE_ENV, PERSPECTIVE_CLOSES, ToxicityJudge
from trustgate.util.errors import TrustgateError
from trustgate.util.storage import digest


class ScoreStore(Protocol):
    """What the generation cache offers: values are lists of strings under string keys."""

    def get_many(self, keys: Sequence[str]) -> dict[str, list[str]]: ...

    def put_many(self, entries: Iterable[tuple[str, list[str]]]) -> None: ...


_STORE: ContextVar[ScoreStore | None] = ContextVar("judge_score_store", default=None)
_RECORDED: ContextVar[str | None] = ContextVar("recorded_judge", default=None)


@contextmanager
def judge_scores_kept_in(store: ScoreStore | None) -> Iterator[None]:
    """Judge scores computed inside the block are read from and written to `store`."""
    token = _STORE.set(store)
    try:
        yield
    finally:
        _STORE.reset(token)


@contextmanager
def judged_as_recorded(name: str | None) -> Iterator[None]:
    """Inside the block, scores come from the judge called `name` (None: the environment's)."""
    token = _RECORDED.set(name)
    try:
        yield
    finally:
        _RECORDED.reset(token)


def score_key(judge: str, text: str) -> str:
    return digest("judge score", judge, text)


def judge_scores(texts: Sequence[str], environment_judge: Callable[[], ToxicityJudge]) -> list[float]:
    """Toxicity of each text: blank texts 0, stored scores of the judge in force, the rest scored
    by the environment's judge (built only to name it; it loads its model on its first text)."""
    scores = [0.0] * len(texts)
    present = sorted({text for text in texts if text.strip()})
    if not present:
        return scores
    store, recorded = _STORE.get(), _RECORDED.get()
    judge = environment_judge() if recorded is None else None
    name = judge.name if judge is not None else str(recorded)
    keys = {text: score_key(name, text) for text in present}
    stored = store.get_many(list(keys.values())) if store is not None else {}
    found = {text: float(stored[key][0]) for text, key in keys.items() if key in stored}
    missing = [text for text in present if text not in found]
    if missing:
        judge = judge or environment_judge()
        if judge.name != name:
            raise _not_stored(name, judge.name, len(missing), len(present))
        fresh = judge.score(missing)
        found.update(zip(missing, fresh, strict=True))
        if store is not None:
            store.put_many((keys[text], [repr(value)]) for text, value in zip(missing, fresh, strict=True))
    return [found[text] if text.strip() else 0.0 for text in texts]


def _not_stored(recorded: str, available: str, missing: int, total: int) -> TrustgateError:
    fix = f"re-score where that run's cache is (TRUSTGATE_CACHE), or set {JUDGE_ENV} to that judge"
    if recorded.startswith("perspective:"):
        fix += f"; {PERSPECTIVE_CLOSES}"
    return TrustgateError(
        f"records judged by {recorded}",
        f"{missing} of {total} texts have no stored score of that judge and the judge in force is {available}",
        fix,
    )
