"""Deterministic metrics on the answer's text: `contains`, `not_contains`, `regex`, `exact_match` (alias
`equals`), `fuzzy_match` and `rouge_l`. Given no explicit value, each compares with the example's `expected`."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Any, ClassVar

from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.evals.metrics.options import check_keys, excerpt, flag, fraction, text

NO_EXPECTED = "no value was configured and the example has no expected answer"


def _expected_texts(example: Example) -> list[str] | None:
    value = example.expected
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    texts = [str(v) for v in items if v is not None and str(v) != ""]
    return texts or None


class _Substrings:
    """Shared by `contains` / `not_contains`: a string, a list of strings, or {value, ignore_case, any}."""

    name: ClassVar[str] = ""
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, value: Any = None, ignore_case: bool = False, any: bool = False) -> None:
        self.ignore_case = flag(ignore_case, "ignore_case")
        self.any = flag(any, "any")
        self.values: list[str] | None = None
        if value is not None:
            items = value if isinstance(value, list) else [value]
            if not items:
                raise MetricSpecError("give at least one string")
            self.values = [text(v, "each value") for v in items]
        self.label = self._label(self.values)

    @classmethod
    def from_spec(cls, spec: Any) -> dict[str, Any]:
        """A tests-file spec: a string, a list, or {value, ignore_case, any} (the value is required there)."""
        if isinstance(spec, dict):
            check_keys(spec, {"value", "ignore_case", "any"}, "value")
            if spec["value"] is None:
                raise MetricSpecError("each value must be a string, got NoneType")
            return dict(spec)
        if spec is None:
            raise MetricSpecError("each value must be a string, got NoneType")
        return {"value": spec}

    def _label(self, values: list[str] | None) -> str:
        joined = (" or " if self.any else ", ").join(repr(v) for v in values) if values else "the expected answer"
        return f"{self.name} {joined}" + (" (ignore case)" if self.ignore_case else "")

    def _found(self, output: str, values: list[str]) -> list[bool]:
        haystack = output.casefold() if self.ignore_case else output
        return [(v.casefold() if self.ignore_case else v) in haystack for v in values]


class Contains(_Substrings):
    """The output contains the string (every string of a list; any of them with `any: true`)."""

    name = "contains"

    def score(self, example: Example) -> Score:
        values = self.values or _expected_texts(example)
        if values is None:
            return unjudged(self.name, NO_EXPECTED)
        found = self._found(example.output, values)
        ok = any(found) if self.any else all(found)
        missing = [v for v, f in zip(values, found, strict=True) if not f]
        detail = "found" if ok else f"missing {', '.join(map(repr, missing))} in {excerpt(example.output)}"
        return Score(self.name, ok, detail, ok)


class NotContains(_Substrings):
    """The output contains none of the strings (with `any: true`: not all of them)."""

    name = "not_contains"

    def score(self, example: Example) -> Score:
        values = self.values or _expected_texts(example)
        if values is None:
            return unjudged(self.name, NO_EXPECTED)
        found = self._found(example.output, values)
        ok = not all(found) if self.any else not any(found)
        present = [v for v, f in zip(values, found, strict=True) if f]
        detail = "absent" if ok else f"found {', '.join(map(repr, present))} in {excerpt(example.output)}"
        return Score(self.name, ok, detail, ok)


class Regex:
    """`re.search` finds the pattern in the output (given no pattern: the expected answer is the pattern)."""

    name: ClassVar[str] = "regex"
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, pattern: Any = None, ignore_case: bool = False, multiline: bool = False) -> None:
        self.flags = (re.IGNORECASE if flag(ignore_case, "ignore_case") else 0) | (
            re.MULTILINE if flag(multiline, "multiline") else 0
        )
        self.pattern = None if pattern is None else self._compile(text(pattern, "the pattern"))
        self.label = f"regex /{self.pattern.pattern}/" if self.pattern else "regex (the expected answer)"

    def _compile(self, source: str) -> re.Pattern[str]:
        try:
            return re.compile(source, self.flags)
        except re.error as exc:
            raise MetricSpecError(f"invalid regular expression {source!r}: {exc}") from None

    @classmethod
    def from_spec(cls, spec: Any) -> dict[str, Any]:
        if isinstance(spec, dict):
            check_keys(spec, {"pattern", "ignore_case", "multiline"}, "pattern")
            return dict(spec)
        return {"pattern": text(spec, "the pattern")}

    def score(self, example: Example) -> Score:
        pattern = self.pattern
        if pattern is None:
            expected = _expected_texts(example)
            if expected is None:
                return unjudged(self.name, NO_EXPECTED)
            try:
                pattern = re.compile(expected[0], self.flags)
            except re.error as exc:
                return unjudged(self.name, f"the expected answer is not a valid regular expression: {exc}")
        match = pattern.search(example.output)
        detail = f"matched {match.group(0)[:60]!r}" if match else f"no match in {excerpt(example.output)}"
        return Score(self.name, match is not None, detail, match is not None)


class ExactMatch:
    """The whole output equals the text (surrounding whitespace ignored unless `strip: false`); given no value,
    any one of the expected answers."""

    name: ClassVar[str] = "exact_match"
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, value: Any = None, ignore_case: bool = False, strip: bool = True) -> None:
        self.ignore_case = flag(ignore_case, "ignore_case")
        self.strip = flag(strip, "strip")
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
            raise MetricSpecError(f"the expected value must be a string, got {type(value).__name__}")
        self.value = None if value is None else str(value)
        shown = "the expected answer" if self.value is None else repr(self.value)
        self.label = f"{self.name} {shown}" + (" (ignore case)" if self.ignore_case else "")

    @classmethod
    def from_spec(cls, spec: Any) -> dict[str, Any]:
        if isinstance(spec, dict):
            check_keys(spec, {"value", "ignore_case", "strip"}, "value")
            return dict(spec)
        if spec is None or isinstance(spec, bool) or not isinstance(spec, str | int | float):
            raise MetricSpecError(f"the expected value must be a string, got {type(spec).__name__}")
        return {"value": spec}

    def _norm(self, value: str) -> str:
        value = value.strip() if self.strip else value
        return value.casefold() if self.ignore_case else value

    def score(self, example: Example) -> Score:
        targets = [self.value] if self.value is not None else _expected_texts(example)
        if targets is None:
            return unjudged(self.name, NO_EXPECTED)
        ok = any(self._norm(example.output) == self._norm(t) for t in targets)
        return Score(self.name, ok, "equal" if ok else f"got {excerpt(example.output)}", ok)


class Equals(ExactMatch):
    """`exact_match` under the name scenario tests files have always used."""

    name = "equals"


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


class FuzzyMatch:
    """Similarity of the output to the expected text, 0..1 (difflib's ratio on normalised text: lower case,
    words only); passes at `threshold` (default 0.8)."""

    name: ClassVar[str] = "fuzzy_match"
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, value: Any = None, threshold: float = 0.8) -> None:
        self.value = None if value is None else text(value, "the value")
        self.threshold = fraction(threshold, "'threshold'")
        self.label = f"fuzzy_match {'the expected answer' if value is None else repr(self.value)} >= {threshold}"

    @staticmethod
    def _norm(value: str) -> str:
        return " ".join(_TOKEN.findall(value.casefold()))

    def score(self, example: Example) -> Score:
        targets = [self.value] if self.value is not None else _expected_texts(example)
        if targets is None:
            return unjudged(self.name, NO_EXPECTED)
        got = self._norm(example.output)
        ratio = max(SequenceMatcher(None, got, self._norm(t), autojunk=False).ratio() for t in targets)
        ok = ratio >= self.threshold
        return Score(self.name, round(ratio, 4), f"similarity {ratio:.2f} (threshold {self.threshold})", ok)


class RougeL:
    """ROUGE-L F1 of the output against the expected text (longest common subsequence of lower-cased words);
    passes at `threshold` when one is given."""

    name: ClassVar[str] = "rouge_l"
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, value: Any = None, threshold: float | None = None) -> None:
        self.value = None if value is None else text(value, "the value")
        self.threshold = None if threshold is None else fraction(threshold, "'threshold'")
        self.label = "rouge_l" + ("" if threshold is None else f" >= {threshold}")

    def score(self, example: Example) -> Score:
        targets = [self.value] if self.value is not None else _expected_texts(example)
        if targets is None:
            return unjudged(self.name, NO_EXPECTED)
        got = _TOKEN.findall(example.output.casefold())
        best = max(rouge_l_f1(got, _TOKEN.findall(t.casefold())) for t in targets)
        passed = None if self.threshold is None else best >= self.threshold
        return Score(self.name, round(best, 4), f"ROUGE-L F1 {best:.2f}", passed)


def rouge_l_f1(candidate: list[str], reference: list[str]) -> float:
    if not candidate or not reference:
        return 0.0
    previous = [0] * (len(reference) + 1)
    for word in candidate:
        current = [0]
        for j, ref in enumerate(reference):
            current.append(previous[j] + 1 if word == ref else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)
