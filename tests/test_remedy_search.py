"""The remedy's search on oracles: it finds the fewest blocks, never probes a set twice and
keeps to its budgets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trustgate.remedy.search import ProbeResult, SearchBudget, largest_prefix, search

UNLIMITED = SearchBudget(probes=10_000, minutes=1e9, max_size_increase=1e9)


def needs(required: set[int]):
    """A probe that passes when every required block is kept (monotone, as the search assumes)."""

    def probe(blocks: tuple[int, ...], phase: str) -> ProbeResult:
        return ProbeResult(blocks, required <= set(blocks), seconds=1.0, phase=phase)

    return probe


def free(blocks: tuple[int, ...]) -> float:
    return 0.0


orders = st.integers(2, 40).flatmap(lambda n: st.permutations(list(range(n))))


@settings(max_examples=200, deadline=None)
@given(order=orders, data=st.data())
def test_with_room_to_search_it_finds_exactly_the_blocks_that_matter(order, data):
    required = set(data.draw(st.sets(st.sampled_from(order), min_size=1, max_size=len(order))))
    result = search(order, needs(required), UNLIMITED, free)
    assert result.best is not None and set(result.best.blocks) == required
    assert result.stopped == "search complete"
    blocks = [p.blocks for p in result.probes]
    assert len(blocks) == len(set(blocks)), "a set was probed twice"
    assert result.probes[0].blocks == () and result.probes[0].phase == "plain"


@settings(max_examples=100, deadline=None)
@given(order=orders, data=st.data(), probes=st.integers(1, 6))
def test_it_never_spends_more_probes_than_allowed_and_what_it_returns_passed(order, data, probes):
    required = set(data.draw(st.sets(st.sampled_from(order), min_size=1, max_size=len(order))))
    result = search(order, needs(required), SearchBudget(probes=probes, minutes=1e9, max_size_increase=1e9), free)
    assert sum(1 for p in result.probes if p.blocks) <= probes
    assert result.best is None or (result.best.passed and required <= set(result.best.blocks))


def test_a_ranking_that_puts_the_needed_block_first_costs_a_handful_of_probes():
    result = search(list(range(30)), needs({0}), UNLIMITED, free)
    assert result.best is not None and result.best.blocks == (0,)
    # plain, all 30, bisection to k=1 (log2 30 ~ 5 probes), no drop needed for a single block
    assert len(result.probes) <= 7


def test_the_plain_variant_passing_ends_the_search():
    result = search([0, 1], needs(set()), UNLIMITED, free)
    assert result.best is None and len(result.probes) == 1 and "plain variant passes" in result.stopped


def test_a_size_budget_too_small_for_the_needed_blocks_is_no_remedy():
    per_block = 10.0  # percent of the plain size per kept block
    budget = SearchBudget(probes=50, minutes=1e9, max_size_increase=25.0)
    result = search([0, 1, 2, 3], needs({3}), budget, lambda blocks: per_block * len(blocks))
    assert largest_prefix([0, 1, 2, 3], lambda blocks: per_block * len(blocks), 25.0) == 2
    assert result.best is None and "no remedy within budget" in result.stopped
    assert [p.blocks for p in result.probes] == [(), (0, 1)]


def test_the_time_budget_stops_before_a_probe_that_would_not_fit():
    now = [0.0]

    def slow(blocks: tuple[int, ...], phase: str) -> ProbeResult:
        now[0] += 600.0  # ten minutes a probe
        return ProbeResult(blocks, 5 in blocks, seconds=600.0, phase=phase)

    result = search(list(range(10)), slow, SearchBudget(probes=50, minutes=35, max_size_increase=1e9), free,
                    started=0.0, clock=lambda: now[0])  # fmt: skip
    assert now[0] <= 35 * 60
    assert "time budget" in result.stopped
    assert result.best is not None and 5 in result.best.blocks  # the passing set found before time ran out
