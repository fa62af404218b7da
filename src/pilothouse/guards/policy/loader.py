"""Reading a policy file: YAML in, a validated `Policy` out, or a `PolicyError` that names the line and field.

Checks, in order: the text is one YAML mapping (aliases bounded, as for prompt files); every field is known and
well typed (pydantic); every scanner named is installed (the error lists the installed ones); an `action:
redact` rule uses a scanner that can redact. Building the scanners from their options (which may load a model)
is the engine's work (`engine.compile_policy`), so a file can be checked without loading any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from pilothouse.config import ConfigError
from pilothouse.guards.policy.model import Policy
from pilothouse.guards.registry import scanner_class, scanner_names
from pilothouse.prompts.registry.safe_yaml import load as safe_load

MAX_POLICY_BYTES = 64 * 1024
"""Far larger than any policy (a few dozen lines); a bound on what a push may store."""
_EXPANSION_LIMIT = 256 * 1024


class PolicyError(ValueError):
    """An invalid policy file. `line` (1-based, None when unknown) and `field` (`input[0].threshold`) say where."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        where = ", ".join(p for p in (f"line {line}" if line else "", field or "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message
        self.line = line
        self.field = field


def parse_policy(text: str) -> Policy:
    """The policy in `text` (a YAML file's content); PolicyError saying where and why when it is not valid."""
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise PolicyError(f"a policy file is at most {MAX_POLICY_BYTES // 1024} KiB")
    try:
        data = safe_load(text, limit=_EXPANSION_LIMIT)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"not valid YAML: {problem}", line=None if mark is None else mark.line + 1) from None
    if not isinstance(data, dict):
        raise PolicyError(f"a policy file is a YAML mapping (name:, input:, output:, ...), not {_kind(data)}")
    root = _compose(text)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        raise PolicyError(_message(first), line=_line(root, loc), field=_dotted(loc) or None) from None
    _check_scanners(policy, root)
    return policy


def _check_scanners(policy: Policy, root: yaml.Node | None) -> None:
    installed = scanner_names()
    rules = [("input", i, r) for i, r in enumerate(policy.input)] + [
        ("output", i, r) for i, r in enumerate(policy.output)
    ]
    for direction, index, rule in rules:
        loc: tuple[str | int, ...] = (direction, index, "scanner")
        if rule.scanner not in installed:
            raise PolicyError(
                f"unknown scanner {rule.scanner!r}; installed scanners: {', '.join(installed)}",
                line=_line(root, loc),
                field=_dotted(loc),
            )
        if rule.action == "redact" and not _redacts(rule.scanner, root, loc):
            raise PolicyError(
                f"scanner {rule.scanner!r} cannot redact; use action block, flag or shadow with it",
                line=_line(root, (direction, index, "action")),
                field=_dotted((direction, index, "action")),
            )
    if policy.storage is not None:
        for index, name in enumerate(policy.storage.scanners):
            loc = ("storage", "scanners", index)
            if name not in installed:
                raise PolicyError(
                    f"unknown scanner {name!r}; installed scanners: {', '.join(installed)}",
                    line=_line(root, loc),
                    field=_dotted(loc),
                )
        unused = sorted(set(policy.storage.options) - set(policy.storage.scanners))
        if unused:
            loc = ("storage", "options", unused[0])
            raise PolicyError(
                f"options for {unused[0]!r}, which is not in storage.scanners",
                line=_line(root, loc),
                field=_dotted(loc),
            )


SPAN_MASKED = frozenset({"system_prompt_leak"})
"""Scanners that do not redact themselves but whose findings are exact spans of the text (a canary, a verbatim
run of the system prompt): a redact rule masks each span as `[KIND]` (engine.evaluate)."""


def _redacts(name: str, root: yaml.Node | None, loc: tuple[str | int, ...]) -> bool:
    if name in SPAN_MASKED:
        return True
    try:
        return scanner_class(name).redacts
    except ConfigError as exc:  # installed but not a scanner (a class without `redacts`)
        raise PolicyError(str(exc), line=_line(root, loc), field=_dotted(loc)) from None
    except ImportError as exc:  # registered, but its module is missing or broken
        message = f"scanner {name!r} cannot be loaded: {exc}"
        raise PolicyError(message, line=_line(root, loc), field=_dotted(loc)) from None


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown field {error['loc'][-1]!r}"
    if error["type"] == "missing":
        return "required field missing"
    return str(error["msg"])


def _kind(value: Any) -> str:
    return "an empty file" if value is None else f"a {type(value).__name__}"


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # already parsed once; cannot happen, but a line number is only a nicety
        return None


def _line(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the YAML node at `loc` (or of its deepest ancestor found)."""
    node = root
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value if not isinstance(value, yaml.ScalarNode) else key
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
