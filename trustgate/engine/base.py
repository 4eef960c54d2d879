"""What every engine offers, and what it is given.

An engine runs one model. It renders a chat into the text the model reads (`render`), so the
generation cache is keyed on exactly that text, and it names its own computation (`backend`:
engine, version, dtype), so generations of two engines, or of bf16 and float32, are never
mixed. Weights load on first `generate` (or `load`), so a fully cached run never loads a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from trustgate.models import ModelHandle
    from trustgate.util.progress import Progress

Messages = tuple[tuple[str, str], ...]  # (role, content) pairs
# Called by an engine that commits as it goes (`commits_as_it_goes`) with the indices (into the
# prompts it was given) and texts of prompts whose generation has finished.
Finished = Callable[[list[int], list[list[str]]], None]


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


@dataclass(frozen=True)
class Prompt:
    """One request: the rendered text (what the cache key rests on) and the chat it came from
    (for an engine whose server applies the chat template itself)."""

    text: str
    messages: Messages = ()


class Engine(Protocol):
    handle: ModelHandle
    # True: `generate` takes every missing prompt at once and reports finished ones through
    # `finished` (so a killed run loses only unfinished work, and rows of one stream keep every
    # decode batch full); False: the generation cache sends prompts in chunks and commits each.
    commits_as_it_goes: bool

    @property
    def backend(self) -> str:
        """Engine name, version and compute dtype, e.g. "transformers-5.17.0+tg1-float32"."""
        ...

    @property
    def loaded(self) -> bool: ...

    def render(self, messages: Messages) -> str: ...

    def load(self) -> None: ...

    def release(self) -> None:
        """Free the weights (the next `generate` loads them again)."""
        ...

    def generate(
        self,
        prompts: Sequence[Prompt],
        decoding: Decoding,
        progress: Progress | None = None,
        finished: Finished | None = None,
    ) -> list[list[str]]:
        """Per prompt, `decoding.samples` texts."""
        ...


def clean_text(text: str) -> str:
    """Replacement characters from broken UTF-8 byte sequences are dropped, not scored."""
    return text.replace("\ufffd", "").strip()
