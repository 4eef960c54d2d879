"""Evaluation sizes: the `[profiles.<name>]` sections of thresholds.toml (items per scenario,
samples, temperature, new tokens) and the settings an evaluation runs with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trustgate.data import TrustData
from trustgate.dimensions.registry import NAMES


class Strict(BaseModel):
    """Frozen, and an unknown key is an error (a typo must never fall back to a default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def check_dimension_names(mapping: dict, where: str) -> None:
    unknown = sorted(set(mapping) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown dimension {unknown[0]!r} in [{where}]; valid: {', '.join(NAMES)}")


class EvaluationSize(Strict):
    limit: int = Field(default=0, ge=0)  # items per scenario; 0 means all
    samples: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    max_new_tokens: int | None = Field(default=None, ge=1)


class Profile(Strict):
    description: str = ""
    batch_size: int = Field(default=32, ge=1)
    dimensions: dict[str, EvaluationSize] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_dimensions(self) -> Profile:
        check_dimension_names(self.dimensions, "profiles.<name>.dimensions")
        return self

    def size(self, dimension: str) -> EvaluationSize:
        return self.dimensions.get(dimension, EvaluationSize())


@dataclass(frozen=True)
class EvaluationSettings:
    """What the evaluator needs from a run's settings."""

    data: TrustData
    profile_name: str
    profile: Profile
    cache_root: Path
    report_dir: Path
    device: str = "auto"  # auto | cpu | cuda | cuda:N (resolved when an engine is made)
    limit: int | None = None  # overrides the profile's items per scenario
    batch_size: int | None = None  # overrides the profile's batch size
    trust_remote_code: bool = False

    @property
    def generation_batch_size(self) -> int:
        return self.batch_size or self.profile.batch_size
