"""thresholds.toml: the gate policy and evaluation sizes, parsed strictly.

A typo (unknown dimension, unknown key, a margin that is not a number) is an error that names
the file, the key and the valid choices; nothing falls back to a silent default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from trustgate.evaluation.profiles import EvaluationSize, Profile, check_dimension_names
from trustgate.evaluation.profiles import Strict as _Strict
from trustgate.util.errors import TrustgateError

Rule = Literal["point", "drop_proven", "safety_proven"]


class ScenarioPolicy(_Strict):
    margin: float | None = Field(default=None, ge=0)
    floor: float | None = Field(default=None, ge=0, le=100)
    rule: Rule | None = None
    max_refusal_rise: float | None = Field(default=None, ge=0)


class DimensionPolicy(ScenarioPolicy):
    tier: Literal["blocking", "informational"] = "blocking"
    required: bool = True  # a selected test of it skipped for missing data fails the session
    scenarios: dict[str, ScenarioPolicy] = Field(default_factory=dict)


class GateDefaults(_Strict):
    margin: float = Field(ge=0)
    rule: Rule = "point"
    max_refusal_rise: float = Field(ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    bootstrap_resamples: int = Field(default=2000, ge=100)
    seed: int = 0
    worst_seed: bool = False
    inconclusive: Literal["fail", "warn"] = "fail"
    min_base_answer_rate: float = Field(default=10.0, ge=0, le=100)


class ResolvedPolicy(_Strict):
    """The gate settings for one (dimension, scenario), defaults filled in."""

    margin: float
    floor: float | None
    rule: Rule
    max_refusal_rise: float
    tier: Literal["blocking", "informational"]
    confidence: float
    bootstrap_resamples: int
    seed: int
    inconclusive: Literal["fail", "warn"] = "fail"
    min_base_answer_rate: float = 10.0


class Thresholds(_Strict):
    gate: GateDefaults
    dimensions: dict[str, DimensionPolicy] = Field(default_factory=dict)
    profiles: dict[str, Profile]

    @model_validator(mode="after")
    def _known_dimensions(self) -> Thresholds:
        check_dimension_names(self.dimensions, "dimensions")
        return self

    def policy(self, dimension: str, scenario: str | None = None) -> ResolvedPolicy:
        dim = self.dimensions.get(dimension, DimensionPolicy())
        scen = dim.scenarios.get(scenario, ScenarioPolicy()) if scenario else ScenarioPolicy()

        def pick(field: str):
            for layer in (scen, dim):
                value = getattr(layer, field)
                if value is not None:
                    return value
            return getattr(self.gate, field, None)

        return ResolvedPolicy(
            margin=pick("margin"),
            floor=pick("floor"),
            rule=pick("rule"),
            max_refusal_rise=pick("max_refusal_rise"),
            tier=dim.tier,
            confidence=self.gate.confidence,
            bootstrap_resamples=self.gate.bootstrap_resamples,
            seed=self.gate.seed,
            inconclusive=self.gate.inconclusive,
            min_base_answer_rate=self.gate.min_base_answer_rate,
        )

    def required(self, dimension: str) -> bool:
        return self.dimensions.get(dimension, DimensionPolicy()).required

    def evaluation_size(self, profile: str, dimension: str) -> EvaluationSize:
        return self.profiles[profile].size(dimension)


def check_scenario_names(thresholds: Thresholds, path: Path, scenarios: dict[str, tuple[str, ...]]) -> None:
    """Scenario overrides must name a scenario the dimension has (a typo would be ignored)."""
    for dimension, policy in thresholds.dimensions.items():
        known = scenarios.get(dimension, ())
        for scenario in policy.scenarios:
            if scenario not in known:
                raise TrustgateError(
                    f"thresholds file {path}",
                    f"dimensions.{dimension}.scenarios.{scenario}: unknown scenario",
                    f"valid scenarios of {dimension}: {', '.join(known)}",
                )


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def load_thresholds(path: Path, profile: str | None = None) -> Thresholds:
    """Parse and validate; every problem becomes one TrustgateError naming the file and key."""
    culprit = f"thresholds file {path}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TrustgateError(culprit, "does not exist", "pass --thresholds PATH to an existing file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TrustgateError(culprit, f"is not valid TOML ({exc})", "fix the syntax at that line") from exc
    try:
        thresholds = Thresholds.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TrustgateError(
            culprit,
            f"{_location(first)}: {first['msg']} (got {first.get('input')!r})",
            "see the comments in thresholds.toml for the allowed keys and values",
        ) from exc
    if profile is not None and profile not in thresholds.profiles:
        raise TrustgateError(
            f"--profile {profile}",
            f"no such profile in {path}",
            f"choose one of: {', '.join(sorted(thresholds.profiles))}",
        )
    return thresholds
