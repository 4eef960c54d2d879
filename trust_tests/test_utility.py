"""Utility: a compressed model must keep its dense base's MMLU 5-shot accuracy.

Scenario: MMLU, every subject, five dev questions as demonstrations (as chat turns); plus the
dimension overall.
Metric: accuracy of the first standalone A-D letter of the response; no letter is wrong and
counts as a non-answer.
Assertion: the drop from dense stays within thresholds.toml [dimensions.utility].
"""

import pytest

from trustgate.dimensions.utility import DIMENSION

pytestmark = pytest.mark.utility


def test_utility(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
