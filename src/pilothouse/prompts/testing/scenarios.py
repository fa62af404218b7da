"""The scenario tests of a prompt (the `<name>.tests.yaml` file beside the prompt file) and their validation.

The file is a list of cases, or a mapping with a `cases` list. A case:

    - name: refund-question            # unique in the file; default "case-<n>"
      description: optional text
      variables: {question: "Can I get a refund?"}
      messages: ["a follow-up user turn"]   # optional: strings are user turns, or {role, content} objects
      assert:                          # optional: a case without assertions passes when the call succeeds
        - contains: refund
        - max_tokens: 64

Each assertion is a one-key mapping `kind: spec` (see `assertions.ASSERTION_KINDS`). Validation collects
every problem, each located as `cases[i].field`, so a person can fix the file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pilothouse.prompts.registry import safe_yaml
from pilothouse.prompts.testing.assertions import ASSERTION_KINDS, Assertion, SpecError, build_assertion

CASE_KEYS = {"name", "description", "variables", "messages", "assert"}
MESSAGE_ROLES = {"system", "developer", "user", "assistant"}


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ScenarioFileError(ValueError):
    """A tests file that is not valid; `problems` locates each mistake (`cases[2].assert[0].regex: ...`)."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source} is not a valid tests file ({len(problems)} problem(s)):\n{lines}")

    def to_dict(self) -> list[dict[str, str]]:
        return [{"where": p.where, "message": p.message} for p in self.problems]


@dataclass(frozen=True, slots=True)
class Case:
    """One scenario: the variables to render the prompt with, extra turns, and what the output must satisfy."""

    name: str
    variables: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    assertions: list[Assertion] = field(default_factory=list)
    description: str | None = None


def case_list(data: Any) -> Any:
    """The cases of a parsed file: the list itself, or the `cases` of a mapping (else `data` unchanged)."""
    if isinstance(data, dict) and "cases" in data:
        return data["cases"]
    return data


def parse_cases(data: Any, *, source: str = "tests file") -> list[Case]:
    """Validate parsed YAML/JSON and build the cases; raises ScenarioFileError listing every problem."""
    problems: list[Problem] = []
    if isinstance(data, dict) and "cases" in data and set(data) != {"cases"}:
        extra = ", ".join(sorted(str(k) for k in data if k != "cases"))
        problems.append(Problem("(top level)", f"unknown key(s) {extra}; the file holds only 'cases'"))
    items = case_list(data)
    if not isinstance(items, list):
        problems.append(Problem("(top level)", "expected a list of cases, or a mapping with a 'cases' list"))
        raise ScenarioFileError(source, problems)
    if not items:
        problems.append(Problem("cases", "the file has no cases"))
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        case = _parse_case(item, i, problems)
        if case is None:
            continue
        if case.name in seen:
            problems.append(Problem(f"cases[{i}].name", f"{case.name!r} is also the name of cases[{seen[case.name]}]"))
        seen.setdefault(case.name, i)
        cases.append(case)
    if problems:
        raise ScenarioFileError(source, problems)
    return cases


def parse_cases_text(text: str, *, source: str = "tests file") -> list[Case]:
    """Parse YAML (or JSON) text; a YAML syntax error becomes a problem with its line and column."""
    try:
        data = safe_yaml.load(text, limit=16 * len(text) + 65_536)  # aliases may not blow a file up
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(YAML)"
        reason = getattr(exc, "problem", None) or str(exc)
        raise ScenarioFileError(source, [Problem(where, f"YAML syntax error: {reason}")]) from None
    return parse_cases(data, source=source)


def load_cases_file(path: Path) -> list[Case]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioFileError(str(path), [Problem("(file)", f"cannot read it: {exc.strerror or exc}")]) from None
    return parse_cases_text(text, source=str(path))


def _parse_case(item: Any, i: int, problems: list[Problem]) -> Case | None:
    at = f"cases[{i}]"
    if not isinstance(item, dict):
        problems.append(Problem(at, f"a case must be a mapping with name, variables, assert; got {_type(item)}"))
        return None
    unknown = sorted(str(k) for k in item if k not in CASE_KEYS)
    if unknown:
        problems.append(Problem(at, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(CASE_KEYS))}"))
    name = item.get("name", f"case-{i + 1}")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(f"{at}.name", f"must be a non-empty string, got {name!r}"))
        name = f"case-{i + 1}"
    description = item.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(Problem(f"{at}.description", f"must be a string, got {_type(description)}"))
        description = None
    variables = item.get("variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(k, str) for k in variables):
        problems.append(
            Problem(f"{at}.variables", f"must be a mapping of variable names to values, got {_type(variables)}")
        )
        variables = {}
    messages = _parse_messages(item.get("messages"), f"{at}.messages", problems)
    assertions = _parse_assertions(item.get("assert"), f"{at}.assert", problems)
    return Case(name.strip(), dict(variables), messages, assertions, description)


def _parse_messages(raw: Any, at: str, problems: list[Problem]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(
            Problem(at, f"must be a list of user turns (strings) or {{role, content}} objects, got {_type(raw)}")
        )
        return []
    messages: list[dict[str, Any]] = []
    for j, msg in enumerate(raw):
        where = f"{at}[{j}]"
        if isinstance(msg, str):
            messages.append({"role": "user", "content": msg})
        elif isinstance(msg, dict):
            role, content = msg.get("role"), msg.get("content")
            if role not in MESSAGE_ROLES:
                problems.append(
                    Problem(f"{where}.role", f"must be one of {', '.join(sorted(MESSAGE_ROLES))}, got {role!r}")
                )
            elif not isinstance(content, str):
                problems.append(Problem(f"{where}.content", f"must be a string, got {_type(content)}"))
            elif set(msg) - {"role", "content", "name"}:
                extra = ", ".join(sorted(str(k) for k in set(msg) - {"role", "content", "name"}))
                problems.append(Problem(where, f"unknown key(s) {extra}"))
            else:
                messages.append(dict(msg))
        else:
            problems.append(Problem(where, f"must be a string or a {{role, content}} object, got {_type(msg)}"))
    return messages


def _parse_assertions(raw: Any, at: str, problems: list[Problem]) -> list[Assertion]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(Problem(at, f"must be a list of one-key mappings like '- contains: text', got {_type(raw)}"))
        return []
    assertions: list[Assertion] = []
    for j, spec in enumerate(raw):
        where = f"{at}[{j}]"
        if not isinstance(spec, dict) or len(spec) != 1:
            kinds = ", ".join(sorted(ASSERTION_KINDS))
            problems.append(Problem(where, f"must be a mapping with exactly one kind ({kinds}), got {spec!r}"))
            continue
        ((kind, value),) = spec.items()
        try:
            assertions.append(build_assertion(str(kind), value))
        except SpecError as exc:
            problems.append(Problem(f"{where}.{kind}", str(exc)))
    return assertions


def _type(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
