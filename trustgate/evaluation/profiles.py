"""Evaluation sizes: the `[profiles.<name>]` sections of thresholds.toml (sample keys per scenario,
samples, temperature, new tokens) and the settings an evaluation runs with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trustgate.data import TrustData
from trustgate.dimensions.registry import NAMES


class Strict(BaseModel):
    """Frozen, strict (a value is never converted: `margin = true` or `margin = "7"` is an error,
    not 1.0 or 7), and an unknown key is an error (a typo must never fall back to a default)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def check_dimension_names(mapping: dict, where: str) -> None:
    unknown = sorted(set(mapping) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown dimension {unknown[0]!r} in [{where}]; valid: {', '.join(NAMES)}")


class EvaluationSize(Strict):
    limit: int = Field(default=0, ge=0)  # sample keys per scenario; 0 means all
    # Per scenario, where it differs from `limit` (a scenario whose items cost many times its
    # dimension's others: benchmarks/ci_sizing.py); names are checked against the dimension's scenarios.
    scenario_limits: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    # Scenarios the profile does not run (ci: each item costs many times its dimension's cheapest,
    # benchmarks/ci_sizing.py): the dimension's overall check is judged on the others and says so;
    # --trust-limit runs them again. Names are checked against the dimension's scenarios.
    left_out: list[str] = Field(default_factory=list)
    samples: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    max_new_tokens: int | None = Field(default=None, ge=1)

    def limit_for(self, scenario: str) -> int:
        return self.scenario_limits.get(scenario, self.limit)


class Profile(Strict):
    description: str = ""
    batch_size: int = Field(default=32, ge=1)
    # A check INCONCLUSIVE for too few items: "fail" blocks, "warn" reports it (None: as [gate]
    # inconclusive). Precision is a matter of size, so the profile says; the base model not
    # answering is not, and always follows [gate] inconclusive.
    too_few_items: Literal["fail", "warn"] | None = None
    # Seconds of generation (dense + one variant, this project's 2-core CPU) the profile's limits
    # were allocated for by detection per second (benchmarks/ci_sizing.py; tests/test_sizing.py
    # checks that the limits are that allocation). None: sizes chosen by hand.
    budget_seconds: float | None = Field(default=None, gt=0)
    dimensions: dict[str, EvaluationSize] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_dimensions(self) -> Profile:
        check_dimension_names(self.dimensions, "profiles.<name>.dimensions")
        return self

    def size(self, dimension: str) -> EvaluationSize:
        return self.dimensions.get(dimension, EvaluationSize())


ENGINES = ("transformers", "vllm", "openai")


@dataclass(frozen=True)
class EngineSettings:
    """Which engine generates (`--trust-engine`) and what it needs: the vLLM interpreter and server
    arguments, or the endpoints of the openai engine as (model name or "" for any, URL)."""

    name: str = "transformers"
    vllm_python: Path | None = None
    urls: tuple[tuple[str, str], ...] = ()
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    max_model_len: int | None = None

    def describe(self) -> str:
        if self.name == "vllm":
            parallel = f"tensor parallel {self.tensor_parallel_size}, pipeline parallel {self.pipeline_parallel_size}"
            return f"vllm server per model from {self.vllm_python} ({parallel})"
        if self.name == "openai":
            return "openai endpoints " + ", ".join(f"{m or '*'}={u}" for m, u in self.urls)
        return self.name

    def url_for(self, model: str) -> str | None:
        named = dict(self.urls)
        return named.get(model) or named.get("")


@dataclass(frozen=True)
class EvaluationSettings:
    """What the evaluator needs from a run's settings."""

    data: TrustData
    profile_name: str
    profile: Profile
    cache_root: Path
    report_dir: Path
    device: str = "auto"  # auto | cpu | cuda | cuda:N (resolved when an engine is made)
    limit: int | None = None  # overrides the profile's sample keys per scenario (scenario_limits too)
    batch_size: int | None = None  # overrides the profile's batch size
    trust_remote_code: bool = False
    engine: EngineSettings = EngineSettings()
    # A dimension's scenarios with the same decoding go to the engine together (Evaluator.prepare).
    scenarios_together: bool = True

    @property
    def generation_batch_size(self) -> int:
        return self.batch_size or self.profile.batch_size
