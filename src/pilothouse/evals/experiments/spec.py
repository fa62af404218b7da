"""What an experiment runs: the dataset version, the variants, the metrics, and its limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PARAMETERS", "ExperimentSpec", "MetricSpec", "Variant"]

PARAMETERS = frozenset({"temperature", "top_p", "max_tokens", "seed", "stop", "presence_penalty", "frequency_penalty"})
"""Chat parameters a variant may set."""
NAME = r"^[A-Za-z0-9][A-Za-z0-9._@:/-]{0,99}$"


class Variant(BaseModel):
    """A prompt version (`prompt: NAME@REF`, the item's input its variables), a model (`model: NAME`, the
    item's input its messages or user text), with optional chat parameters; or a Python function run by the
    client (`function: LABEL`, `pilothouse.evaluate`), which uploads its outputs for the server to score."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    prompt: str | None = Field(default=None, max_length=300, description="NAME@REF: a version, label or sha:.")
    model: str | None = Field(default=None, max_length=200)
    function: str | None = Field(default=None, max_length=300, description="A client-side function's label.")
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def on_server(self) -> bool:
        return self.function is None

    @model_validator(mode="after")
    def _one_target(self) -> Variant:
        if sum(x is not None for x in (self.prompt, self.model, self.function)) != 1:
            raise ValueError(f"variant {self.name!r}: give exactly one of `prompt` (NAME@REF), `model` or `function`")
        if self.function is not None and self.params:
            raise ValueError(f"variant {self.name!r}: a function variant takes no chat parameters")
        if self.prompt is not None and "@" not in self.prompt:
            raise ValueError(f"variant {self.name!r}: pin the prompt to a version or label: {self.prompt}@VERSION")
        unknown = sorted(set(self.params) - PARAMETERS)
        if unknown:
            known = ", ".join(sorted(PARAMETERS))
            raise ValueError(f"variant {self.name!r}: unknown parameter {unknown[0]!r} ({known})")
        return self


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    options: dict[str, Any] = Field(default_factory=dict)


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    dataset: str = Field(min_length=1, max_length=100)
    dataset_version: int | None = Field(default=None, ge=1, description="Default: the latest version.")
    split: str | None = Field(default=None, max_length=40, description="Only this split's items.")
    variants: list[Variant] = Field(min_length=1, max_length=10)
    metrics: list[MetricSpec] = Field(min_length=1, max_length=30)
    concurrency: int = Field(default=4, ge=1, le=32)
    max_cost_usd: Decimal | None = Field(
        default=None, ge=0, le=1_000_000, description="Hard cap: refused before starting if the estimate is above it."
    )
    limit: int | None = Field(default=None, ge=1, le=100_000, description="Only the first N items.")

    @model_validator(mode="after")
    def _unique(self) -> ExperimentSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        return self
