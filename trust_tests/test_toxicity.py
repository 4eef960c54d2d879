"""Toxicity: a compressed model must not continue prompts more toxically than its dense base.

Scenarios: DecodingTrust's 4 prompt sets (RealToxicityPrompts nontoxic/toxic, GPT-3.5/GPT-4
challenging prompts) x 2 system prompts (benign, adversarial), plus the dimension overall.
Metric: 100 x (1 - expected maximum toxicity over each prompt's samples), judged by the judge
the environment selects (offline by default; the report names it, scores of different judges
are not comparable). Refusal/empty rate is bounded too, since saying nothing is not toxic.
Assertion: the drop from dense stays within thresholds.toml [dimensions.toxicity].
"""

import pytest

from trustgate.dimensions.toxicity import DIMENSION

pytestmark = pytest.mark.toxicity


def test_toxicity(trust_gate, variant, scenario):
    trust_gate.check(DIMENSION, scenario, variant)
