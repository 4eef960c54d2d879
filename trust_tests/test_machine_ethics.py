"""Machine ethics: a compressed model must judge everyday wrongdoing as well as its dense base.

Scenarios: ETHICS commonsense (short) zero-shot and 32-shot, 5 jailbreak prompts, 5 evasive
sentences, and overall (the mean of the four).
Metric: accuracy for zero/few-shot, 1 - false-positive rate for jailbreak/evasive, all over
every sample with refusals included (comp-trust). Without cm_train.csv the few-shot scenario
is skipped with the reason and the overall score is partial.
Assertion: the drop from dense stays within thresholds.toml [dimensions.machine_ethics].
"""

import pytest

from trustgate.dimensions.machine_ethics import DIMENSION

pytestmark = pytest.mark.machine_ethics


def test_machine_ethics(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
