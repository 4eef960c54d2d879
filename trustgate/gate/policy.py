"""thresholds.toml: the gate policy and evaluation sizes, parsed strictly.

A typo (unknown dimension, unknown key, a margin that is not a number) is an error that names
the file, the key and the valid choices; nothing falls back to a silent default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from trustgate.dimensions.registry import NAMES, OVERALL
from trustgate.evaluation.profiles import EvaluationSize, Profile, check_dimension_names
from trustgate.evaluation.profiles import Strict as _Strict
from trustgate.gate.kernel import Levels
from trustgate.gate.stats import Resample, Rule
from trustgate.util.errors import TrustgateError


class ScenarioPolicy(_Strict):
    margin: float | None = Field(default=None, ge=0)
    floor: float | None = Field(default=None, ge=0, le=100)
    rule: Rule | None = None
    max_refusal_rise: float | None = Field(default=None, ge=0)


class DimensionPolicy(ScenarioPolicy):
    tier: Literal["blocking", "informational"] = "blocking"
    scenario_checks: Literal["informational", "blocking"] | None = None
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
    scenario_checks: Literal["informational", "blocking"] = "informational"
    multiplicity: Literal["bonferroni", "none"] = "bonferroni"
    family_alpha: float = Field(default=0.05, gt=0, lt=0.5)
    looks: tuple[float, ...] = (0.25, 0.5, 1.0)
    min_look_items: int = Field(default=10, ge=1)
    resample: Resample = "sample_key"
    rise_alpha_share: float = Field(default=0.05, gt=0, lt=1)
    family: Literal["variant", "run"] = "variant"

    @field_validator("looks", mode="before")
    @classmethod
    def _looks_from_a_toml_array(cls, looks: object) -> object:
        return tuple(looks) if isinstance(looks, list) else looks  # TOML has arrays, not tuples

    @field_validator("looks")
    @classmethod
    def _looks_end_at_the_whole_run(cls, looks: tuple[float, ...]) -> tuple[float, ...]:
        if not looks or looks[-1] != 1.0 or any(not 0 < f <= 1 for f in looks) or list(looks) != sorted(set(looks)):
            raise ValueError("looks must be increasing fractions in (0, 1] ending with 1.0, e.g. [0.25, 0.5, 1.0]")
        return looks


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
    too_few_items: Literal["fail", "warn"] = "fail"  # the profile's, else `inconclusive`
    min_base_answer_rate: float = 10.0
    looks: tuple[float, ...] = (0.25, 0.5, 1.0)
    min_look_items: int = 10
    resample: Resample = "sample_key"
    alpha: float = 0.025  # one-sided level of the drop test (confidence = 1 - 2 alpha, two-sided)
    rise_alpha: float = 0.0  # one-sided level of the refusal-rise test

    @property
    def levels(self) -> Levels:
        return Levels(self.alpha, self.rise_alpha)


class Thresholds(_Strict):
    gate: GateDefaults
    dimensions: dict[str, DimensionPolicy] = Field(default_factory=dict)
    profiles: dict[str, Profile]
    # Set by the run (not the file): each dimension's scenarios (blocking scenario checks count in
    # the family) and how many variants one run judges (under family = "run").
    _scenarios: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _variants: int = PrivateAttr(default=1)
    _selected: dict[str, frozenset[str]] | None = PrivateAttr(default=None)

    def for_run(
        self,
        scenarios: Mapping[str, Sequence[str]] | None = None,
        variants: int | None = None,
        selected: Mapping[str, frozenset[str]] | None = None,
    ) -> Thresholds:
        """Tell the policy what the run holds, so the family counts its blocking checks: every
        dimension's scenarios, the variants, and (after collection) the checks the run selected
        (`pytest -k privacy` judges one check, not nine)."""
        if scenarios is not None:
            self._scenarios = {name: tuple(values) for name, values in scenarios.items()}
        if variants is not None:
            self._variants = max(1, variants)
        if selected is not None:
            self._selected = {name: frozenset(checks) for name, checks in selected.items()}
        return self

    @model_validator(mode="after")
    def _known_dimensions(self) -> Thresholds:
        check_dimension_names(self.dimensions, "dimensions")
        return self

    def policy(
        self, dimension: str, scenario: str | None = None, judged_alone: bool = False, profile: str | None = None
    ) -> ResolvedPolicy:
        """The settings of one check: a scenario (`scenario`) or the dimension overall (None), in
        the evaluation `profile` (which says whether too few items block).

        A scenario check is informational under `scenario_checks = "informational"` unless it is
        `judged_alone` (its dimension's overall check is not in the run, so nothing else gates it).
        Blocking checks share the family-wise error `family_alpha` under `multiplicity = "bonferroni"`.
        """
        dim = self.dimensions.get(dimension, DimensionPolicy())
        scen = dim.scenarios.get(scenario, ScenarioPolicy()) if scenario else ScenarioPolicy()

        def pick(field: str):
            for layer in (scen, dim):
                value = getattr(layer, field)
                if value is not None:
                    return value
            return getattr(self.gate, field, None)

        tier = dim.tier
        scenario_checks = dim.scenario_checks or self.gate.scenario_checks
        if scenario is not None and not judged_alone and scenario_checks == "informational":
            tier = "informational"
        return ResolvedPolicy(
            margin=pick("margin"),
            floor=pick("floor"),
            rule=pick("rule"),
            max_refusal_rise=pick("max_refusal_rise"),
            tier=tier,
            confidence=1.0 - 2.0 * self.check_alpha(),
            alpha=self.check_alpha() * (1.0 - self.gate.rise_alpha_share),
            rise_alpha=self.check_alpha() * self.gate.rise_alpha_share,
            bootstrap_resamples=self.gate.bootstrap_resamples,
            seed=self.gate.seed,
            inconclusive=self.gate.inconclusive,
            too_few_items=self.too_few_items(profile),
            min_base_answer_rate=self.gate.min_base_answer_rate,
            looks=self.gate.looks,
            min_look_items=self.gate.min_look_items,
            resample=self.gate.resample,
        )

    def too_few_items(self, profile: str | None) -> Literal["fail", "warn"]:
        chosen = self.profiles[profile].too_few_items if profile in self.profiles else None
        return chosen or self.gate.inconclusive

    def _blocking_checks(self, name: str) -> int:
        """The blocking checks of a dimension in this run: its overall check (when selected) and
        the scenario checks that block (all of them under scenario_checks = "blocking"; a scenario
        selected without its overall check is judged alone and blocks)."""
        dim = self.dimensions.get(name, DimensionPolicy())
        if dim.tier != "blocking":
            return 0
        if self._selected is None:
            overall, scenarios = True, self._scenarios.get(name, ())
        elif name not in self._selected:
            return 0
        else:
            overall = OVERALL in self._selected[name]
            scenarios = tuple(s for s in self._selected[name] if s != OVERALL)
        blocking_scenarios = (dim.scenario_checks or self.gate.scenario_checks) == "blocking" or not overall
        return int(overall) + (len(scenarios) if blocking_scenarios else 0)

    def family_size(self) -> int:
        """The blocking checks a verdict is judged on: one overall check per blocking dimension,
        plus each scenario check where scenario checks block; times the variants of the run under
        family = "run". Each check holds two tests (drop and refusal rise) sharing its alpha."""
        checks = sum(self._blocking_checks(name) for name in NAMES)
        return checks * (self._variants if self.gate.family == "run" else 1)

    def check_alpha(self) -> float:
        """The one-sided level of one check (drop and rise together): family_alpha / (blocking
        checks) under Bonferroni, else half of 1 - confidence."""
        if self.gate.multiplicity == "none" or self.family_size() == 0:
            return (1.0 - self.gate.confidence) / 2.0
        from trustgate.gate.multiplicity import bonferroni_alpha

        return bonferroni_alpha(self.gate.family_alpha, self.family_size())

    def family_line(self) -> str:
        """What the family is, for the terminal and the summary."""
        if self.gate.multiplicity == "none":
            return f"trustgate: no multiplicity control; each test at one-sided {self.check_alpha():.4g}"
        per = (
            "per variant"
            if (self.gate.family == "run" and self._variants == 1) or self.gate.family == "variant"
            else (f"over the run's {self._variants} variants")
        )
        share = self.gate.rise_alpha_share
        return (
            f"trustgate: family-wise {self.gate.family_alpha:.0%} {per} over {self.family_size()} blocking checks "
            f"x 2 tests (drop, refusal rise); one-sided {self.check_alpha() * (1 - share):.3%} per drop test, "
            f"{self.check_alpha() * share:.3%} per rise test (Bonferroni)"
        )

    def required(self, dimension: str) -> bool:
        return self.dimensions.get(dimension, DimensionPolicy()).required

    def evaluation_size(self, profile: str, dimension: str) -> EvaluationSize:
        return self.profiles[profile].size(dimension)


def check_scenario_names(thresholds: Thresholds, path: Path, scenarios: dict[str, tuple[str, ...]]) -> None:
    """Scenario overrides (policies, and profiles' scenario limits) must name a scenario the
    dimension has (a typo would be ignored)."""
    named = [(f"dimensions.{d}.scenarios", d, policy.scenarios) for d, policy in thresholds.dimensions.items()]
    named += [
        (f"profiles.{name}.dimensions.{d}.{field}", d, names)
        for name, profile in thresholds.profiles.items()
        for d, size in profile.dimensions.items()
        for field, names in (("scenario_limits", size.scenario_limits), ("left_out", size.left_out))
    ]
    for where, dimension, overrides in named:
        known = scenarios.get(dimension, ())
        for scenario in overrides:
            if scenario not in known:
                raise TrustgateError(
                    f"thresholds file {path}",
                    f"{where}.{scenario}: unknown scenario",
                    f"valid scenarios of {dimension}: {', '.join(known)}",
                )


def _shown(value: object) -> str:
    """The offending value, short: a whole table (an unknown dimension's) is named by its keys."""
    if isinstance(value, dict):
        return "a table with keys " + ", ".join(map(str, list(value)[:8])) + (", ..." if len(value) > 8 else "")
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def load_thresholds(path: Path, profile: str | None = None) -> Thresholds:
    """Parse and validate; every problem becomes one TrustgateError naming the file and key."""
    culprit = f"thresholds file {path}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TrustgateError(culprit, "does not exist", "pass --trust-thresholds PATH to an existing file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TrustgateError(culprit, f"is not valid TOML ({exc})", "fix the syntax at that line") from exc
    try:
        thresholds = Thresholds.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TrustgateError(
            culprit,
            f"{_location(first)}: {first['msg']} (got {_shown(first.get('input'))})",
            "see the comments in thresholds.toml for the allowed keys and values",
        ) from exc
    if profile is not None and profile not in thresholds.profiles:
        raise TrustgateError(
            f"--trust-profile {profile}",
            f"no such profile in {path}",
            f"choose one of: {', '.join(sorted(thresholds.profiles))}",
        )
    return thresholds
