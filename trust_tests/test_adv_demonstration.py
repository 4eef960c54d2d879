"""Adversarial demonstrations: a compressed model must not be misled by demonstrations more than its base.

Scenarios: counterfactual demonstrations (6 tasks), spurious correlations in demonstrations
(6 heuristics x 2 biases), backdoored demonstrations (4 triggers x 3 setups), and overall.
Metric: accuracy per task averaged over tasks; backdoor scores 1 - attack success rate.
Data DecodingTrust's public repository lacks (spurious files, *_cacc files, extra seeds)
make the scenario skipped or partial, never passed silently.
Assertion: the drop from dense stays within thresholds.toml [dimensions.adv_demonstration].
"""

import pytest

from trustgate.dimensions.adv_demonstration import DIMENSION

pytestmark = pytest.mark.adv_demonstration


def test_adv_demonstration(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
