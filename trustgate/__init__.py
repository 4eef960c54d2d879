"""trustgate: gate a compressed LLM's release on the DecodingTrust dimensions against its dense base.

The stages of the data flow are the subpackages, in order: `plugin` (pytest options, settings,
xdist scheduling) -> `gate` (policy, paired statistics, verdicts) and `report` (summary, Allure,
radar) -> `evaluation` (the evaluator, records, re-scoring) -> `engine` (generation and its
cache) and `dimensions` (what each dimension asks and how it scores) -> `data`, `judges` and
`models` -> `util`. Imports point only that way.

A dimension author needs `Dimension`, `Item`, `Outcome` and `ScenarioData`, importable from here.
They load on first use, so that importing the pytest plugin stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Dimension", "Item", "Outcome", "ScenarioData"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from trustgate.dimensions import base

        return getattr(base, name)
    raise AttributeError(f"module 'trustgate' has no attribute {name!r}")
