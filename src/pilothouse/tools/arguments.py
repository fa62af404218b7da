"""A tool call's arguments against its JSON Schema, with refusals that never quote the caller's values.

jsonschema's own messages repeat the offending value (`'sk-live-...' is not of type 'integer'`); arguments
may hold secrets, so a failure is told by where it is and which schema keyword failed.
"""

from __future__ import annotations

from typing import Any

import orjson
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for


def compile_schema(schema: dict[str, Any]) -> Validator:
    """A validator for `schema` (its `$schema` dialect, else draft 2020-12), checking `format` too."""
    cls = validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def parse_arguments(arguments: str | dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """The arguments object of a tool call (the model sends a JSON string), or why it is not one."""
    if arguments is None or arguments == "":
        return {}, None
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return None, "the arguments are not valid JSON"
    if not isinstance(arguments, dict):
        return None, "the arguments are not a JSON object"
    return arguments, None


def schema_problem(validator: Validator, arguments: dict[str, Any]) -> tuple[str, str] | None:
    """None when `arguments` satisfy the schema, else (the schema keyword that failed, a safe description)."""
    error = best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    keyword = str(error.validator)
    where = _path(error.absolute_path)
    if keyword == "required":
        missing = [p for p in error.validator_value if isinstance(error.instance, dict) and p not in error.instance]
        name = f"{where}.{missing[0]}" if where and missing else (missing[0] if missing else where)
        return keyword, f"the required argument '{name}' is missing"
    if keyword in ("additionalProperties", "unevaluatedProperties"):
        return (
            keyword,
            f"{f'argument {where!r}' if where else 'the arguments'} have a property the schema does not allow",
        )
    subject = f"argument '{where}'" if where else "the arguments"
    return keyword, f"{subject} fail the schema's '{keyword}' check"


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
