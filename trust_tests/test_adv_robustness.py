"""Adversarial robustness: a compressed model must stay as accurate as its dense base on AdvGLUE++.

Scenarios: SST-2, QQP and MNLI adversarial texts transferred from attacks on three source
models (Alpaca, Vicuna, StableVicuna), few-shot; plus the dimension overall. Offline without
AdvGLUE++ the scenarios are skipped with the reason; the embedded probes are perturbed items
of our own and are labelled as such.
Metric: accuracy, mean over source models; an unparseable answer is wrong and is reported as
the refusal + non-answer rate.
Assertion: the drop from dense stays within thresholds.toml [dimensions.adv_robustness].
"""

import pytest

from trustgate.dimensions.adv_robustness import DIMENSION

pytestmark = pytest.mark.adv_robustness


def test_adv_robustness(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
