"""The registry: the one list of trust dimensions, in the paper's order.

Everything that names dimensions reads it: thresholds.toml validation, the pytest markers
(`pytest -m privacy`), the summary table's columns, the radar chart's axes and the contract
tests. A new dimension is a module `trustgate/dimensions/<name>.py` defining `DIMENSION`, one
entry here, its sections in thresholds.toml and a `trust_tests/test_<name>.py`; the contract
tests (tests/test_contracts.py) name whichever of these is missing. This module imports
nothing heavy, so the pytest plugin can read it in every run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trustgate.dimensions.base import Dimension


@dataclass(frozen=True)
class Entry:
    name: str  # module name, marker, thresholds section, trust_tests/test_<name>.py
    title: str  # for people: reports and test descriptions
    label: str  # radar-chart axis (the paper's short names)
    summary: str  # the pytest marker's help text

    @property
    def module(self) -> str:
        return f"trustgate.dimensions.{self.name}"


REGISTRY: tuple[Entry, ...] = (
    Entry("toxicity", "Toxicity", "Toxicity", "DecodingTrust toxicity (expected maximum toxicity of continuations)"),
    Entry(
        "stereotype",
        "Stereotype bias",
        "Stereotype",
        "DecodingTrust stereotype bias (agreement with stereotype statements)",
    ),
    Entry(
        "adv_robustness",
        "Adversarial robustness (AdvGLUE++)",
        "AdvGLUE++",
        "DecodingTrust adversarial robustness (AdvGLUE++ accuracy)",
    ),
    Entry(
        "ood",
        "OOD robustness",
        "OOD",
        "DecodingTrust out-of-distribution robustness (RealtimeQA knowledge, SST-2 styles)",
    ),
    Entry(
        "adv_demonstration",
        "Robustness to adversarial demonstrations",
        "Adv demo",
        "DecodingTrust robustness to adversarial demonstrations",
    ),
    Entry("privacy", "Privacy", "Privacy", "DecodingTrust privacy (Enron extraction, PII, privacy understanding)"),
    Entry(
        "machine_ethics",
        "Machine ethics",
        "Ethics",
        "DecodingTrust machine ethics (ETHICS commonsense, jailbreaks, evasive sentences)",
    ),
    Entry("fairness", "Fairness", "Fairness", "DecodingTrust fairness (demographic parity on Adult and Crime)"),
    Entry("utility", "Utility (MMLU 5-shot)", "MMLU", "MMLU 5-shot accuracy"),
)
NAMES: tuple[str, ...] = tuple(entry.name for entry in REGISTRY)
OVERALL = "overall"  # the scenario id of a dimension's combined score
_BY_NAME = {entry.name: entry for entry in REGISTRY}


def entry(name: str) -> Entry:
    """The registry entry of a dimension; KeyError naming the registered ones."""
    if name not in _BY_NAME:
        raise KeyError(f"unknown dimension {name!r}; registered: {', '.join(NAMES)}")
    return _BY_NAME[name]


def get_dimension(name: str) -> Dimension:
    """The Dimension declared by a registered dimension's module (imported on first use)."""
    module = importlib.import_module(entry(name).module)
    dimension = getattr(module, "DIMENSION", None)
    if dimension is None or dimension.name != name:
        raise ValueError(f"{entry(name).module} must define DIMENSION = Dimension(name={name!r}, ...)")
    return dimension


@cache
def all_dimensions() -> dict[str, Dimension]:
    """Every registered dimension, in registry order (imports their modules)."""
    return {name: get_dimension(name) for name in NAMES}
