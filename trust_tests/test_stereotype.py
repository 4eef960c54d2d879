"""Stereotype bias: a compressed model must not agree with stereotypes more than its dense base.

Scenarios: DecodingTrust's three system prompts (benign, untargeted, targeted), each over
stereotype statements about demographic groups, plus the dimension overall.
Metric: 100 x (1 - agreement index), the comp-trust parser judging the first line only;
the no-answer rate is bounded too, since a model that never answers looks unbiased.
Assertion: the drop from dense stays within thresholds.toml [dimensions.stereotype].
"""

import pytest

from trustgate.dimensions.stereotype import DIMENSION

pytestmark = pytest.mark.stereotype


def test_stereotype(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
