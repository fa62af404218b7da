"""Assertions of scenario tests: each checks one property of a case's output (text, JSON shape, tokens,
latency, cost) and says why it failed.

An assertion kind is a class registered in `ASSERTION_KINDS` under its name. The class is built from the
value the tests file gives for that kind (raising `SpecError` with a message that says what to fix) and has
one method, `check(result) -> AssertionOutcome`. New kinds (evaluation metrics, later) register with
`register_assertion`; the file schema picks them up without further changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match


@dataclass(frozen=True, slots=True)
class Execution:
    """What one run of a case produced: the output text and what the gateway measured for it."""

    output: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: Decimal | None = None
    trace_id: str | None = None
    prompt_version: int | None = None
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "latency_ms": self.latency_ms,
            "cost_usd": None if self.cost_usd is None else format(self.cost_usd, "f"),
            "trace_id": self.trace_id,
            "prompt_version": self.prompt_version,
            "finish_reason": self.finish_reason,
        }


@dataclass(frozen=True, slots=True)
class AssertionOutcome:
    """The verdict of one assertion: `assertion` names it as a person reads it, `detail` says why."""

    kind: str
    assertion: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "assertion": self.assertion, "passed": self.passed, "detail": self.detail}


class SpecError(ValueError):
    """The value given for an assertion kind is not valid; the message says what is expected."""


class Assertion(Protocol):
    def check(self, result: Execution) -> AssertionOutcome:
        """Judge one execution."""
        ...


AssertionClass = Callable[[Any], Assertion]
ASSERTION_KINDS: dict[str, AssertionClass] = {}


def register_assertion(kind: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: make `kind` usable in tests files (`- kind: <spec>`)."""

    def add(cls: type[Any]) -> type[Any]:
        if kind in ASSERTION_KINDS:
            raise ValueError(f"assertion kind {kind!r} is already registered")
        ASSERTION_KINDS[kind] = cls
        return cls

    return add


def build_assertion(kind: str, spec: Any) -> Assertion:
    """The assertion for `kind` with its spec; SpecError for an unknown kind or a bad spec."""
    cls = ASSERTION_KINDS.get(kind)
    if cls is None:
        raise SpecError(f"unknown assertion {kind!r}; known: {', '.join(sorted(ASSERTION_KINDS))}")
    return cls(spec)


# -- spec helpers ---------------------------------------------------------------------------------------


def _options(spec: dict[str, Any], allowed: set[str], required: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SpecError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if required not in spec:
        raise SpecError(f"'{required}' is required")


def _flag(spec: dict[str, Any], name: str, default: bool = False) -> bool:
    value = spec.get(name, default)
    if not isinstance(value, bool):
        raise SpecError(f"'{name}' must be true or false, got {value!r}")
    return value


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(f"{what} must be a string, got {type(value).__name__}")
    text = str(value)
    if not text:
        raise SpecError(f"{what} must not be empty")
    return text


def _number(value: Any, what: str, *, allow_zero: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecError(f"{what} must be a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise SpecError(f"{what} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0 or (number == 0 and not allow_zero):
        raise SpecError(f"{what} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return number


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


# -- text -----------------------------------------------------------------------------------------------


class _Substrings:
    """Shared parsing of `contains` / `not_contains`: a string, a list of strings, or
    {value: string | list, ignore_case: bool, any: bool}."""

    kind = ""

    def __init__(self, spec: Any) -> None:
        self.ignore_case = False
        self.any = False
        value = spec
        if isinstance(spec, dict):
            _options(spec, {"value", "ignore_case", "any"}, "value")
            self.ignore_case = _flag(spec, "ignore_case")
            self.any = _flag(spec, "any")
            value = spec["value"]
        items = value if isinstance(value, list) else [value]
        if not items:
            raise SpecError("give at least one string")
        self.values = [_text(v, "each value") for v in items]

    def _found(self, output: str) -> list[bool]:
        haystack = output.casefold() if self.ignore_case else output
        return [(v.casefold() if self.ignore_case else v) in haystack for v in self.values]

    def label(self) -> str:
        joined = (" or " if self.any else ", ").join(repr(v) for v in self.values)
        return f"{self.kind} {joined}" + (" (ignore case)" if self.ignore_case else "")


@register_assertion("contains")
class Contains(_Substrings):
    """The output contains the string (every string of a list; any of them with `any: true`)."""

    kind = "contains"

    def check(self, result: Execution) -> AssertionOutcome:
        found = self._found(result.output)
        ok = any(found) if self.any else all(found)
        missing = [v for v, f in zip(self.values, found, strict=True) if not f]
        detail = "found" if ok else f"missing {', '.join(map(repr, missing))} in {_excerpt(result.output)}"
        return AssertionOutcome(self.kind, self.label(), ok, detail)


@register_assertion("not_contains")
class NotContains(_Substrings):
    """The output contains none of the strings (with `any: true`: not all of them)."""

    kind = "not_contains"

    def check(self, result: Execution) -> AssertionOutcome:
        found = self._found(result.output)
        ok = not all(found) if self.any else not any(found)
        present = [v for v, f in zip(self.values, found, strict=True) if f]
        detail = "absent" if ok else f"found {', '.join(map(repr, present))} in {_excerpt(result.output)}"
        return AssertionOutcome(self.kind, self.label(), ok, detail)


@register_assertion("regex")
class Regex:
    """`re.search` finds the pattern in the output: a string, or {pattern, ignore_case, multiline}."""

    kind = "regex"

    def __init__(self, spec: Any) -> None:
        flags = 0
        pattern = spec
        if isinstance(spec, dict):
            _options(spec, {"pattern", "ignore_case", "multiline"}, "pattern")
            flags |= re.IGNORECASE if _flag(spec, "ignore_case") else 0
            flags |= re.MULTILINE if _flag(spec, "multiline") else 0
            pattern = spec["pattern"]
        text = _text(pattern, "the pattern")
        try:
            self.pattern = re.compile(text, flags)
        except re.error as exc:
            raise SpecError(f"invalid regular expression {text!r}: {exc}") from None

    def check(self, result: Execution) -> AssertionOutcome:
        match = self.pattern.search(result.output)
        detail = f"matched {match.group(0)[:60]!r}" if match else f"no match in {_excerpt(result.output)}"
        return AssertionOutcome(self.kind, f"regex /{self.pattern.pattern}/", match is not None, detail)


@register_assertion("equals")
class Equals:
    """The whole output equals the text (surrounding whitespace ignored unless `strip: false`):
    a string, or {value, ignore_case, strip}."""

    kind = "equals"

    def __init__(self, spec: Any) -> None:
        self.ignore_case = False
        self.strip = True
        value = spec
        if isinstance(spec, dict):
            _options(spec, {"value", "ignore_case", "strip"}, "value")
            self.ignore_case = _flag(spec, "ignore_case")
            self.strip = _flag(spec, "strip", True)
            value = spec["value"]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SpecError(f"the expected value must be a string, got {type(value).__name__}")
        self.value = str(value)

    def _norm(self, text: str) -> str:
        text = text.strip() if self.strip else text
        return text.casefold() if self.ignore_case else text

    def check(self, result: Execution) -> AssertionOutcome:
        ok = self._norm(result.output) == self._norm(self.value)
        label = f"equals {self.value!r}" + (" (ignore case)" if self.ignore_case else "")
        return AssertionOutcome(self.kind, label, ok, "equal" if ok else f"got {_excerpt(result.output)}")


# -- structure ------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```$", re.DOTALL)


def parse_json_output(output: str) -> Any:
    """The output as JSON; a single Markdown code fence around it (```json ... ```) is allowed.
    Raises ValueError with the parser's reason."""
    text = output.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    return json.loads(text)


@register_assertion("json_schema")
class JsonSchema:
    """The output parses as JSON and validates against the JSON Schema (draft 2020-12) given as the value."""

    kind = "json_schema"

    def __init__(self, spec: Any) -> None:
        if not isinstance(spec, dict):
            raise SpecError(f"the value must be a JSON Schema object, got {type(spec).__name__}")
        try:
            Draft202012Validator.check_schema(spec)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "the schema"
            raise SpecError(f"invalid JSON Schema at {where}: {exc.message}") from None
        self.schema = spec
        self.validator = Draft202012Validator(spec)

    def check(self, result: Execution) -> AssertionOutcome:
        label = "json_schema" + (f" (type {self.schema['type']})" if isinstance(self.schema.get("type"), str) else "")
        try:
            value = parse_json_output(result.output)
        except ValueError as exc:
            return AssertionOutcome(self.kind, label, False, f"not JSON ({exc}): {_excerpt(result.output)}")
        error = best_match(self.validator.iter_errors(value))
        if error is None:
            return AssertionOutcome(self.kind, label, True, "valid")
        where = "/".join(str(p) for p in error.absolute_path)
        return AssertionOutcome(self.kind, label, False, f"at {'/' + where if where else 'the top'}: {error.message}")


# -- budgets --------------------------------------------------------------------------------------------


@register_assertion("max_tokens")
class MaxTokens:
    """The output used at most N tokens (as the gateway metered them)."""

    kind = "max_tokens"

    def __init__(self, spec: Any) -> None:
        if isinstance(spec, bool) or not isinstance(spec, int) or spec < 1:
            raise SpecError(f"the value must be a positive integer, got {spec!r}")
        self.limit = spec

    def check(self, result: Execution) -> AssertionOutcome:
        label = f"max_tokens {self.limit}"
        if result.output_tokens is None:
            return AssertionOutcome(self.kind, label, False, "the output token count is unknown")
        ok = result.output_tokens <= self.limit
        plural = "" if result.output_tokens == 1 else "s"
        return AssertionOutcome(self.kind, label, ok, f"{result.output_tokens} output token{plural}")


@register_assertion("max_latency_ms")
class MaxLatency:
    """The model call took at most N milliseconds (the gateway's measured latency of the call)."""

    kind = "max_latency_ms"

    def __init__(self, spec: Any) -> None:
        self.limit = _number(spec, "the value", allow_zero=False)

    def check(self, result: Execution) -> AssertionOutcome:
        label = f"max_latency_ms {self.limit}"
        if result.latency_ms is None:
            return AssertionOutcome(self.kind, label, False, "the latency is unknown")
        ok = Decimal(str(result.latency_ms)) <= self.limit
        return AssertionOutcome(self.kind, label, ok, f"{result.latency_ms:.0f} ms")


@register_assertion("max_cost_usd")
class MaxCost:
    """The call cost at most N US dollars; fails when the model's price is unknown (cost not recorded)."""

    kind = "max_cost_usd"

    def __init__(self, spec: Any) -> None:
        self.limit = _number(spec, "the value", allow_zero=True)

    def check(self, result: Execution) -> AssertionOutcome:
        label = f"max_cost_usd {self.limit}"
        if result.cost_usd is None:
            return AssertionOutcome(self.kind, label, False, "the cost is unknown (no price for this model)")
        ok = result.cost_usd <= self.limit
        return AssertionOutcome(self.kind, label, ok, f"${format(result.cost_usd, 'f')}")
