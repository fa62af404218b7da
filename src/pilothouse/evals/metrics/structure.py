"""Deterministic metrics on the answer's shape: `json_schema`, `numeric` (a number within a tolerance) and
`length` (characters or words within bounds)."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.evals.metrics.options import check_keys, excerpt, number

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```$", re.DOTALL)


def parse_json_output(output: str) -> Any:
    """The output as JSON; a single Markdown code fence around it (```json ... ```) is allowed.
    Raises ValueError with the parser's reason."""
    value = output.strip()
    fenced = _FENCE.match(value)
    if fenced:
        value = fenced.group(1).strip()
    return json.loads(value)


def _validator(schema: Any) -> Draft202012Validator:
    if not isinstance(schema, dict):
        raise MetricSpecError(f"the value must be a JSON Schema object, got {type(schema).__name__}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the schema"
        raise MetricSpecError(f"invalid JSON Schema at {where}: {exc.message}") from None
    return Draft202012Validator(schema)


class JsonSchema:
    """The output parses as JSON and validates against the JSON Schema (draft 2020-12); given no schema, the
    example's `expected` is the schema."""

    name: ClassVar[str] = "json_schema"
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, schema: Any = None) -> None:
        self.schema = schema
        self.validator = None if schema is None else _validator(schema)
        typed = isinstance(schema, dict) and isinstance(schema.get("type"), str)
        self.label = "json_schema" + (f" (type {schema['type']})" if typed else "")

    @classmethod
    def from_spec(cls, spec: Any) -> dict[str, Any]:
        """In a tests file the value is the schema itself."""
        _validator(spec)
        return {"schema": spec}

    def score(self, example: Example) -> Score:
        validator = self.validator
        if validator is None:
            if example.expected is None:
                return unjudged(self.name, "no schema was configured and the example has no expected schema")
            try:
                validator = _validator(example.expected)
            except MetricSpecError as exc:
                return unjudged(self.name, f"the expected answer is not a usable schema: {exc}")
        try:
            value = parse_json_output(example.output)
        except ValueError as exc:
            return Score(self.name, False, f"not JSON ({exc}): {excerpt(example.output)}", False)
        error = best_match(validator.iter_errors(value))
        if error is None:
            return Score(self.name, True, "valid", True)
        where = "/".join(str(p) for p in error.absolute_path)
        return Score(self.name, False, f"at {'/' + where if where else 'the top'}: {error.message}", False)


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numbers_in(value: str) -> list[float]:
    """The numbers written in a text, in order (thousands separators allowed)."""
    return [float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(value)]


class Numeric:
    """The answer's number is within `tolerance` of the target (`relative: true`: a share of the target). The
    answer's number is the whole output when it is one, else the last number written in it."""

    name: ClassVar[str] = "numeric"
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, value: Any = None, tolerance: Any = 0, relative: bool = False) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | str)):
            raise MetricSpecError(f"the value must be a number, got {value!r}")
        self.value = None if value is None else self._target(value)
        if value is not None and self.value is None:
            raise MetricSpecError(f"the value must be a number, got {value!r}")
        self.tolerance = float(number(tolerance, "'tolerance'", allow_zero=True))
        if not isinstance(relative, bool):
            raise MetricSpecError(f"'relative' must be true or false, got {relative!r}")
        self.relative = relative
        shown = "the expected answer" if self.value is None else f"{self.value:g}"
        self.label = f"numeric {shown} ± {self.tolerance:g}{' (relative)' if relative else ''}"

    @staticmethod
    def _target(value: Any) -> float | None:
        found = numbers_in(str(value))
        return found[0] if len(found) == 1 else None

    @classmethod
    def from_spec(cls, spec: Any) -> dict[str, Any]:
        if isinstance(spec, dict):
            check_keys(spec, {"value", "tolerance", "relative"}, "value")
            return dict(spec)
        return {"value": spec}

    def score(self, example: Example) -> Score:
        target = self.value if self.value is not None else self._target(example.expected)
        if target is None:
            return unjudged(self.name, "no number was configured and the expected answer is not one number")
        found = numbers_in(example.output)
        if not found:
            return Score(self.name, False, f"no number in {excerpt(example.output)}", False)
        got = found[-1]
        allowed = self.tolerance * abs(target) if self.relative else self.tolerance
        ok = abs(got - target) <= allowed + 1e-12
        return Score(self.name, ok, f"got {got:g}, expected {target:g} ± {allowed:g}", ok)


class Length:
    """The output's length is within bounds: `min_chars`, `max_chars`, `min_words`, `max_words` (any of them)."""

    name: ClassVar[str] = "length"
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        min_chars: int | None = None,
        max_chars: int | None = None,
        min_words: int | None = None,
        max_words: int | None = None,
    ) -> None:
        self.bounds = {"min_chars": min_chars, "max_chars": max_chars, "min_words": min_words, "max_words": max_words}
        for key, bound in self.bounds.items():
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 0):
                raise MetricSpecError(f"'{key}' must be a non-negative integer, got {bound!r}")
        if all(b is None for b in self.bounds.values()):
            raise MetricSpecError("give at least one of min_chars, max_chars, min_words, max_words")
        self.label = "length " + ", ".join(f"{k} {v}" for k, v in self.bounds.items() if v is not None)

    @classmethod
    def from_spec(cls, spec: Any) -> dict[str, Any]:
        """A number is `max_chars`; a mapping names the bounds."""
        if isinstance(spec, dict):
            check_keys(spec, {"min_chars", "max_chars", "min_words", "max_words"})
            return dict(spec)
        return {"max_chars": spec}

    def score(self, example: Example) -> Score:
        chars, words = len(example.output), len(example.output.split())
        measured = {"chars": chars, "words": words}
        broken = []
        for key, bound in self.bounds.items():
            if bound is None:
                continue
            side, unit = key.split("_")
            if (side == "min" and measured[unit] < bound) or (side == "max" and measured[unit] > bound):
                broken.append(f"{key} {bound}")
        detail = f"{chars} chars, {words} words" + (f" (breaks {', '.join(broken)})" if broken else "")
        return Score(self.name, not broken, detail, not broken)
