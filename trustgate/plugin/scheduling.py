"""How `pytest -n N` spreads the gate over xdist workers: by model, so each worker loads few.

xdist's default (`--dist load`) hands tests out one by one, so a worker may alternate between
variants and reload models it has just evicted. trustgate instead hands out whole work units:
one unit per variant when there are at least as many variants as workers (each worker keeps
the dense base and one variant loaded at a time), else one unit per (dimension, variant), so no
worker sits idle: a single variant's dimensions spread over every worker. Members of a seed
group (`gptq4@seed1`, `gptq4@seed2`) share their group's unit, since the group's test reads
every member's generations. Any other test (our own tests under `pytest tests -n 2`) is a unit
of its own, as with `--dist load`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling


def unit_of(nodeid: str, units: Mapping[str, str], workers: int) -> str:
    """The work unit of a test: its variant's unit for a trust test; any other test is its own.

    `units` maps each variant parameter id to the unit it belongs to. A trust test's id is
    `module::function[<variant>-<scenario>]`; variant names may contain '-' (`wanda-2:4`), so
    the longest variant that prefixes the parameters wins.
    """
    if not nodeid.endswith("]") or "[" not in nodeid:
        return nodeid
    parameters = nodeid[nodeid.index("[") + 1 : -1]
    matches = [variant for variant in units if parameters.startswith(f"{variant}-")]
    if not matches:
        return nodeid
    module = nodeid.split("::", 1)[0]
    unit = units[max(matches, key=len)]
    return unit if len(set(units.values())) >= workers else f"{module}::{unit}"


class ModelScheduling(LoadScopeScheduling):
    """xdist's scope scheduler with work units chosen by `unit_of`."""

    def __init__(self, config: pytest.Config, log: Producer | None, units: Mapping[str, str]) -> None:
        super().__init__(config, log)
        self.units = dict(units)

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid, self.units, workers=self.numnodes)
