"""Checking a metric's options: the messages say what to fix (they reach users of tests files and the API)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pilothouse.evals.metrics.base import MetricSpecError


def check_keys(spec: Mapping[str, Any], allowed: set[str], required: str | None = None) -> None:
    unknown = sorted(str(k) for k in set(spec) - allowed)
    if unknown:
        raise MetricSpecError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if required is not None and required not in spec:
        raise MetricSpecError(f"'{required}' is required")


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise MetricSpecError(f"'{name}' must be true or false, got {value!r}")
    return value


def text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MetricSpecError(f"{what} must be a string, got {type(value).__name__}")
    result = str(value)
    if not result:
        raise MetricSpecError(f"{what} must not be empty")
    return result


def number(value: Any, what: str, *, allow_zero: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise MetricSpecError(f"{what} must be a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise MetricSpecError(f"{what} must be a number, got {value!r}") from None
    if not result.is_finite() or result < 0 or (result == 0 and not allow_zero):
        raise MetricSpecError(f"{what} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return result


def fraction(value: Any, what: str) -> float:
    """A threshold in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise MetricSpecError(f"{what} must be a number between 0 and 1, got {value!r}")
    return float(value)


def excerpt(value: str, limit: int = 80) -> str:
    flat = " ".join(value.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
