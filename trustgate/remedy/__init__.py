"""Remedy search: when a variant fails the gate, find the fewest decoder blocks to keep at
higher precision (8-bit groups for a quantized variant, dense for a pruned one) so that it passes.

ranking (free signals, then KL from dense with one block restored) -> search (bisection over the
ranked prefix, then dropping blocks; budgets of probes, time and size) -> confirmation (the gate
on held-out items) -> report (ranked table, probe lines, the recipe file for `--model recipe:PATH`).
Compression comes in through `VariantBuilder`; the pytest plugin supplies it (`pytest --trust-remedy`).
"""

from trustgate.remedy.run import Check, RemedyOptions, RemedyReport, RemedySearch, VariantBuilder
from trustgate.remedy.search import SearchBudget

__all__ = ["Check", "RemedyOptions", "RemedyReport", "RemedySearch", "SearchBudget", "VariantBuilder"]
