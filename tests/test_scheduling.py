"""xdist work units: one per variant, or per (dimension, variant) when workers outnumber variants."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from trustgate.plugin.scheduling import unit_of

TWO_VARIANTS = {"gptq4": "gptq4", "wanda-2:4": "wanda-2:4"}


def unit(nodeid: str, units: Mapping[str, str] = TWO_VARIANTS, workers: int = 2) -> str:
    return unit_of(nodeid, units, workers)


def test_as_many_variants_as_workers_one_unit_each_across_dimensions():
    assert unit("trust_tests/test_privacy.py::test_privacy[gptq4-enron]") == "gptq4"
    assert unit("trust_tests/test_ood.py::test_ood[gptq4-overall]") == "gptq4"
    assert unit("trust_tests/test_ood.py::test_ood[wanda-2:4-style_few_shot]") == "wanda-2:4"


def test_more_workers_than_variants_spread_by_dimension_too():
    privacy = unit("trust_tests/test_privacy.py::test_privacy[gptq4-pii]", workers=4)
    assert privacy == unit("trust_tests/test_privacy.py::test_privacy[gptq4-enron]", workers=4)
    assert privacy != unit("trust_tests/test_ood.py::test_ood[gptq4-pii]", workers=4)
    assert privacy != unit("trust_tests/test_privacy.py::test_privacy[wanda-2:4-pii]", workers=4)


def test_one_variant_spreads_by_dimension():
    units = {"awq4": "awq4"}
    privacy = unit("trust_tests/test_privacy.py::test_privacy[awq4-pii]", units)
    assert privacy == unit("trust_tests/test_privacy.py::test_privacy[awq4-overall]", units)
    assert privacy != unit("trust_tests/test_ood.py::test_ood[awq4-pii]", units)


def test_longest_variant_name_wins():
    units = {"gptq4": "gptq4", "gptq4+cal16": "gptq4+cal16"}
    assert unit("trust_tests/test_ood.py::test_ood[gptq4+cal16-knowledge_zero_shot]", units) == "gptq4+cal16"
    assert unit("trust_tests/test_ood.py::test_ood[gptq4-knowledge_zero_shot]", units) == "gptq4"


def test_seed_group_members_share_the_group_unit():
    units = {"gptq4@seed1": "gptq4@seeds", "gptq4@seed2": "gptq4@seeds", "gptq4@seeds": "gptq4@seeds", "awq4": "awq4"}
    assert unit("trust_tests/test_ood.py::test_ood[gptq4@seed2-overall]", units) == "gptq4@seeds"
    assert unit("trust_tests/test_ood.py::test_ood[gptq4@seeds-overall]", units) == "gptq4@seeds"


def test_other_tests_are_units_of_their_own():
    assert unit("tests/test_stats.py::test_bootstrap") == "tests/test_stats.py::test_bootstrap"
    nodeid = "tests/test_variants.py::test_parse[gptq3]"  # parametrized, but not by a gated variant
    assert unit(nodeid) == nodeid


VARIANT_NAMES = ["gptq3", "gptq4", "gptq4+cal16", "awq4", "wanda-2:4", "wanda-50", "magnitude-4:8", "sparsegpt-1:2"]


@given(
    variants=st.lists(st.sampled_from(VARIANT_NAMES), min_size=2, unique=True),
    chosen=st.integers(min_value=0),
    scenario=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.0123456789-:", min_size=1, max_size=30),
)
def test_every_trust_test_lands_in_its_own_variants_unit(variants, chosen, scenario):
    variant = variants[chosen % len(variants)]
    units = {name: name for name in variants}
    assert unit(f"trust_tests/test_x.py::test_x[{variant}-{scenario}]", units, workers=len(variants)) == variant
