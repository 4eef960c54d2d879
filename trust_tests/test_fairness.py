"""Fairness: a compressed model must not predict more unequally across groups than its dense base.

Scenarios: DecodingTrust's 11 settings: Adult income zero-shot at test base-rate parity
0.0/0.5/1.0, 32-shot at demonstration base-rate parity 0.0/0.5/1.0, fair demonstrations at
16 and 32 shots, Crime zero-shot at 0.0/0.5/1.0; plus the dimension overall.
Metric: 100 x (1 - demographic parity difference); unparsed answers stay in as the negative
class (comp-trust), so refusing does not shrink the sample the parity is measured on.
Assertion: the drop from dense stays within thresholds.toml [dimensions.fairness].
"""

import pytest

from trustgate.dimensions.fairness import DIMENSION

pytestmark = pytest.mark.fairness


def test_fairness(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
