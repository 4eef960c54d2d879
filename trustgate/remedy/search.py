"""The search for the fewest kept blocks that pass: bisection over the ranked prefix, then
dropping blocks one at a time, within budgets of probes, time and size.

Pure logic: a probe is a function of the kept blocks (the caller compresses and evaluates), so
the search is tested with oracles. It assumes what the ranking suggests, that keeping more of
the ranked blocks never hurts; no set is probed twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Blocks = tuple[int, ...]


@dataclass(frozen=True)
class ProbeResult:
    blocks: Blocks  # kept at higher precision, sorted; () is the plain variant
    passed: bool
    seconds: float = 0.0
    size_bytes: int | None = None  # effective checkpoint size (packed or non-zero weights)
    details: tuple[dict[str, Any], ...] = ()  # one comparison summary per judged check
    phase: str = ""  # plain, budget, bisect, drop


@dataclass(frozen=True)
class SearchBudget:
    probes: int = 8  # compressions + evaluations, the plain variant not counted
    minutes: float = 50.0  # wall time of the whole remedy, ranking included
    max_size_increase: float = 100.0  # percent over the plain variant's size


@dataclass
class SearchResult:
    probes: list[ProbeResult] = field(default_factory=list)
    best: ProbeResult | None = None  # the smallest passing set found
    stopped: str = ""  # why the search ended where it did

    @property
    def passing(self) -> list[ProbeResult]:
        return [p for p in self.probes if p.passed and p.blocks]


def largest_prefix(order: Sequence[int], size_increase: Callable[[Blocks], float], budget: float) -> int:
    """The most ranked blocks that can be kept within the size budget (percent over plain)."""
    k = 0
    while k < len(order) and size_increase(tuple(sorted(order[: k + 1]))) <= budget:
        k += 1
    return k


def search(
    order: Sequence[int],
    probe: Callable[[Blocks, str], ProbeResult],
    budget: SearchBudget,
    size_increase: Callable[[Blocks], float],
    started: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Find a small set of blocks to keep such that the probe passes (see the module docstring)."""
    started = clock() if started is None else started
    result = SearchResult()
    tried: dict[Blocks, ProbeResult] = {}

    def out_of_budget() -> str:
        compressed = sum(1 for p in result.probes if p.blocks)
        if compressed >= budget.probes:
            return f"probe budget spent ({budget.probes})"
        last = max((p.seconds for p in result.probes), default=0.0)
        if clock() - started + last > budget.minutes * 60:
            return f"time budget spent ({budget.minutes:g} min; the next probe would not fit)"
        return ""

    def attempt(blocks: Sequence[int], phase: str) -> ProbeResult | None:
        key = tuple(sorted(set(blocks)))
        if key in tried:
            return tried[key]
        if key and (why := out_of_budget()):
            result.stopped = why
            return None
        outcome = probe(key, phase)
        tried[key] = outcome
        result.probes.append(outcome)
        return outcome

    plain = attempt((), "plain")
    assert plain is not None
    if plain.passed:
        result.stopped = "the plain variant passes on the search items: nothing to remedy there"
        return result
    most = largest_prefix(order, size_increase, budget.max_size_increase)
    if most == 0:
        result.stopped = f"not one block fits the size budget (+{budget.max_size_increase:g}%)"
        return result
    top = attempt(order[:most], "budget")
    if top is None:
        return result
    if not top.passed:
        result.stopped = (
            f"keeping the {most} top-ranked blocks (the most the size budget allows) still fails: "
            "no remedy within budget"
        )
        return result
    low, high = 0, most  # keeping order[:low] fails, order[:high] passes
    while high - low > 1:
        middle = (low + high) // 2
        outcome = attempt(order[:middle], "bisect")
        if outcome is None:
            break
        low, high = (low, middle) if outcome.passed else (middle, high)
    best = tried[tuple(sorted(order[:high]))]
    if not result.stopped:
        # Least helpful first: a block the bisection took in only to reach the last ones may go.
        for block in reversed(order[:high]):
            candidate = tuple(b for b in best.blocks if b != block)
            if not candidate or block not in best.blocks:
                continue
            outcome = attempt(candidate, "drop")
            if outcome is None:
                break
            if outcome.passed:
                best = outcome
    result.best = best
    result.stopped = result.stopped or "search complete"
    return result
