"""Multiplicity control for a variant's checks: the Bonferroni level per check.

A variant is judged on several blocking checks (each dimension overall, and every scenario where
scenario checks block). Controlling the family-wise error (the chance that a variant with no
excess drop fails at least one blocking check) needs a smaller one-sided level per check:
Bonferroni's family_alpha / checks, which holds whatever the dependence between the checks
(dimensions share a model, not their items). The policy (trustgate/gate/policy.py) decides the
family; the kernel (trustgate/gate/kernel.py) tests at the level.
"""

from __future__ import annotations


def bonferroni_alpha(family_alpha: float, checks: int) -> float:
    """The per-check one-sided level that keeps the family-wise error at most family_alpha."""
    if not 0 < family_alpha < 1:
        raise ValueError(f"family alpha must lie in (0, 1), got {family_alpha}")
    if checks < 1:
        raise ValueError(f"need at least one check, got {checks}")
    return family_alpha / checks
