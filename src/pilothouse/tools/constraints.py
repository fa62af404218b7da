"""Argument rules: constraints on a tool call's arguments beyond its JSON Schema.

A rule names an argument (`arg`, a dotted path into the arguments object; `*` stands for every item of a
list or every value of an object, so `recipients.*.email` checks each recipient) and one or more checks:

- `domains`: the argument is an http(s) URL whose host is one of these (`example.com` exactly,
  `*.example.com` any subdomain of it); `schemes` narrows or widens the allowed schemes (default http, https);
- `path_prefixes`: the argument is a path that, once normalised, lies under one of these prefixes (a `..`
  that climbs out, a backslash or a NUL byte is refused);
- `min` / `max`: the argument is a number within these bounds (amounts, counts);
- `enum`: the argument is one of these values (narrower than the schema's own enum);
- `pattern`: the argument is a string that matches this regular expression as a whole;
- `max_length`: the argument (string or list) is at most this long.

An argument that is absent is not checked (the schema says which are required). A failure says which
argument and which rule, never the argument's value: arguments may hold secrets.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CHECKS = ("domains", "schemes", "path_prefixes", "min", "max", "enum", "pattern", "max_length")
_UNSAFE_URL = re.compile(r"[\\\s\x00-\x1f\x7f]")
_DOMAIN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class RuleError(ValueError):
    """An argument rule that cannot be used (the message names the rule and the field)."""


@dataclass(frozen=True, slots=True)
class ArgumentRule:
    """Checks on one argument (see the module docstring for what each does)."""

    arg: str
    domains: tuple[str, ...] | None = None
    schemes: tuple[str, ...] = ("http", "https")
    path_prefixes: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    max_length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arg": self.arg}
        for name in CHECKS:
            value = getattr(self, name)
            if name == "schemes" and (self.domains is None or value == ("http", "https")):
                continue
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def describe(self) -> str:
        """The rule in a few words, for refusals and listings (values of the rule, not of the call)."""
        parts = [f"{k}={v}" for k, v in self.to_dict().items() if k != "arg"]
        return f"{self.arg}: {'; '.join(parts)}"

    def check(self, arguments: dict[str, Any]) -> str | None:
        """None when every value at `arg` passes, else why one fails (naming the argument, not its value)."""
        for where, value in _values_at(arguments, self.arg.split("."), ""):
            problem = self._problem(value)
            if problem is not None:
                return f"argument '{where}' {problem}"
        return None

    def _problem(self, value: Any) -> str | None:
        if self.domains is not None and (problem := _url_problem(value, self.domains, self.schemes)):
            return problem
        if self.path_prefixes is not None and (problem := _path_problem(value, self.path_prefixes)):
            return problem
        if self.min is not None or self.max is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return "is not a number"
            if self.min is not None and value < self.min:
                return f"is below the minimum {self.min:g}"
            if self.max is not None and value > self.max:
                return f"is above the maximum {self.max:g}"
        if self.enum is not None and not any(_same(value, allowed) for allowed in self.enum):
            return f"is not one of the allowed values ({len(self.enum)})"
        if self.pattern is not None and (not isinstance(value, str) or re.fullmatch(self.pattern, value) is None):
            return "does not match the allowed pattern"
        if self.max_length is not None and (not isinstance(value, str | list) or len(value) > self.max_length):
            return f"is longer than {self.max_length}"
        return None


def _same(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else bool(a == b)


def _values_at(node: Any, path: list[str], where: str) -> Iterator[tuple[str, Any]]:
    if not path:
        yield where, node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(node, list):
            for i, item in enumerate(node):
                yield from _values_at(item, rest, f"{where}[{i}]")
        elif isinstance(node, dict):
            for key, item in node.items():
                yield from _values_at(item, rest, f"{where}.{key}" if where else str(key))
        return
    if isinstance(node, dict) and head in node:
        yield from _values_at(node[head], rest, f"{where}.{head}" if where else head)


def host_allowed(host: str, domains: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for domain in domains:
        if domain.startswith("*."):
            if host.endswith(domain[1:]) and len(host) > len(domain) - 1:
                return True
        elif host == domain:
            return True
    return False


def _url_problem(value: Any, domains: tuple[str, ...], schemes: tuple[str, ...]) -> str | None:
    if not isinstance(value, str) or _UNSAFE_URL.search(value):
        return "is not a plain URL"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a plain URL"
    if parts.scheme.lower() not in schemes:
        return f"does not use an allowed scheme ({', '.join(schemes)})"
    if not host:
        return "has no host"
    if not host_allowed(host, domains):
        return "points to a host outside the allowed domains"
    return None


def _path_problem(value: Any, prefixes: tuple[str, ...]) -> str | None:
    if not isinstance(value, str) or not value or "\x00" in value or "\\" in value:
        return "is not a plain path"
    path = posixpath.normpath(value)
    if ".." in path.split("/"):
        return "climbs out of its directory ('..')"
    for prefix in prefixes:
        base = posixpath.normpath(prefix)
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return None
    return "is outside the allowed path prefixes"


def parse_rule(raw: Any, where: str = "rule") -> ArgumentRule:
    """An ArgumentRule from its mapping (`{"arg": "url", "domains": [...]}`); RuleError says what is wrong."""
    if not isinstance(raw, dict) or not isinstance(raw.get("arg"), str) or not raw["arg"].strip():
        raise RuleError(f"{where}: a rule is a mapping with an 'arg' (the argument it checks) and its checks")
    arg = raw["arg"].strip()
    unknown = sorted(set(raw) - {"arg", *CHECKS})
    if unknown:
        raise RuleError(f"{where} ({arg}): unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    if not set(raw) & (set(CHECKS) - {"schemes"}):
        raise RuleError(f"{where} ({arg}): name at least one check ({', '.join(c for c in CHECKS if c != 'schemes')})")
    kwargs: dict[str, Any] = {"arg": arg}
    for name in ("domains", "schemes", "path_prefixes", "enum"):
        if name in raw:
            values = raw[name]
            if not isinstance(values, list) or not values:
                raise RuleError(f"{where} ({arg}): '{name}' must be a non-empty list")
            kwargs[name] = tuple(values)
    for name in ("domains", "schemes", "path_prefixes"):
        if name in kwargs and not all(isinstance(v, str) and v for v in kwargs[name]):
            raise RuleError(f"{where} ({arg}): '{name}' must list non-empty strings")
    if "domains" in kwargs:
        kwargs["domains"] = tuple(d.lower().rstrip(".") for d in kwargs["domains"])
        bad = [d for d in kwargs["domains"] if not _DOMAIN.match(d)]
        if bad:
            raise RuleError(f"{where} ({arg}): not a domain name: {', '.join(bad)} (use example.com or *.example.com)")
    if "schemes" in kwargs:
        kwargs["schemes"] = tuple(s.lower() for s in kwargs["schemes"])
    for name in ("min", "max"):
        if name in raw:
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise RuleError(f"{where} ({arg}): '{name}' must be a number")
            kwargs[name] = value
    if "pattern" in raw:
        try:
            re.compile(raw["pattern"])
        except (re.error, TypeError) as exc:
            raise RuleError(f"{where} ({arg}): 'pattern' is not a regular expression: {exc}") from None
        kwargs["pattern"] = raw["pattern"]
    if "max_length" in raw:
        value = raw["max_length"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RuleError(f"{where} ({arg}): 'max_length' must be a whole number >= 0")
        kwargs["max_length"] = value
    return ArgumentRule(**kwargs)


def parse_rules(raw: Any) -> tuple[ArgumentRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RuleError("'rules' must be a list of argument rules")
    return tuple(parse_rule(item, f"rules[{i}]") for i, item in enumerate(raw))


_SCALAR_CHECKS = {"min", "max", "max_length", "pattern"}


def parse_rule_text(text: str) -> ArgumentRule:
    """A rule from the command line's `ARG:CHECK=VALUE[,VALUE...]` (`url:domains=example.com,*.example.org`,
    `amount:max=100`); several checks on one argument are separated by `;`."""
    arg, sep, checks = text.partition(":")
    if not sep or not arg.strip() or not checks.strip():
        raise RuleError(f"rule {text!r}: write ARG:CHECK=VALUE, e.g. url:domains=example.com or amount:max=100")
    raw: dict[str, Any] = {"arg": arg.strip()}
    for part in checks.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq or name not in CHECKS:
            raise RuleError(f"rule {text!r}: {name or part!r} is not a check; known: {', '.join(CHECKS)}")
        if name in _SCALAR_CHECKS:
            raw[name] = value if name == "pattern" else _number(value, text)
        else:
            raw[name] = [_scalar(v.strip()) if name == "enum" else v.strip() for v in value.split(",") if v.strip()]
    return parse_rule(raw, f"rule {text!r}")


def _number(value: str, text: str) -> float | int:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise RuleError(f"rule {text!r}: {value!r} is not a number") from None


def _scalar(value: str) -> Any:
    """An enum value from the command line: a JSON number, true/false/null, else the text itself."""
    lowered = {"true": True, "false": False, "null": None}
    if value in lowered:
        return lowered[value]
    try:
        return _number(value, value)
    except RuleError:
        return value
