"""OOD robustness: a compressed model must handle shifted styles and unknown knowledge like its dense base.

Scenarios: RealtimeQA knowledge 0-shot (standard and with an "I don't know" option) and
few-shot (MMLU-domain demonstrations); SST-2 sentiment in 10 shifted styles, 0-shot and
8-shot; plus the dimension overall (the mean of the four parts).
Metric: accuracy averaged per sub-task; in the knowledge 0-shot part a refusal counts as
correct (DecodingTrust's rr + (1 - rr) x macc). Refusal rates are reported beside the score.
Assertion: the drop from dense stays within thresholds.toml [dimensions.ood].
"""

import pytest

from trustgate.dimensions.ood import DIMENSION

pytestmark = pytest.mark.ood


def test_ood(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
