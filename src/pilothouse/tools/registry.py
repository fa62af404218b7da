"""Tool definitions: a tool's name, the JSON Schema of its arguments, its risk level and description.

A registry file (YAML or JSON) holds one tool, a list of tools, or `{"tools": [...]}`. Each tool is written
either plainly (`name`, `description`, `risk`, `parameters`) or in the OpenAI request shape
(`{"type": "function", "function": {"name", "description", "parameters"}}` plus `risk`), so the tools a caller
sends to the model can be registered as they are. `parameters` is a JSON Schema (draft 2020-12 unless it
names another `$schema`); a tool without one takes any object.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import yaml
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

Risk = Literal["low", "medium", "high"]
RISKS: tuple[str, ...] = get_args(Risk)
"""Risk levels, lowest first. A `high` tool call needs a person's approval even when it is allowed."""

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""OpenAI's rule for function names; a registered tool's name follows it so it can be offered to any model."""
MAX_DESCRIPTION = 2000
ANY_OBJECT: dict[str, Any] = {"type": "object"}


class ToolDefinitionError(ValueError):
    """A tool definition or registry file that cannot be used; the message names the tool and field."""


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """One registered tool."""

    name: str
    risk: Risk = "low"
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: dict(ANY_OBJECT))
    """The JSON Schema its arguments (a JSON object) must satisfy."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "risk": self.risk, "description": self.description, "parameters": self.parameters}


def check_schema(schema: Any, where: str) -> dict[str, Any]:
    """`schema` if it is a valid JSON Schema for an arguments object, else ToolDefinitionError."""
    if not isinstance(schema, dict):
        raise ToolDefinitionError(f"{where}: 'parameters' must be a JSON Schema object")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise ToolDefinitionError(
            f"{where}: 'parameters' is not a valid JSON Schema at {path}: {exc.message}"
        ) from None
    if schema.get("type", "object") != "object":
        raise ToolDefinitionError(f"{where}: 'parameters' must describe an object (type: object)")
    return schema


def parse_tool(raw: Any, where: str = "tool") -> ToolDefinition:
    """One tool from its plain or OpenAI-shaped mapping; ToolDefinitionError names what is wrong."""
    if not isinstance(raw, dict):
        raise ToolDefinitionError(f"{where}: a tool is a mapping with at least a 'name'")
    risk = raw.get("risk", "low")
    if raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        raw = {**raw["function"], "risk": risk}
    unknown = sorted(set(raw) - {"name", "description", "risk", "parameters", "strict"})
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ToolDefinitionError(f"{where}: 'name' must be 1-64 letters, digits, '_' or '-'")
    where = f"tool {name!r}"
    if unknown:
        raise ToolDefinitionError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: name, description, risk, parameters)"
        )
    if risk not in RISKS:
        raise ToolDefinitionError(f"{where}: 'risk' must be one of {', '.join(RISKS)}, got {risk!r}")
    description = raw.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise ToolDefinitionError(f"{where}: 'description' must be text of at most {MAX_DESCRIPTION} characters")
    parameters = check_schema(raw.get("parameters", ANY_OBJECT), where)
    return ToolDefinition(name=name, risk=risk, description=description, parameters=parameters)


def parse_tools(data: Any) -> list[ToolDefinition]:
    """The tools of a parsed registry document: one tool, a list, or `{"tools": [...]}`; names are unique."""
    if isinstance(data, dict) and "tools" in data and "name" not in data and "function" not in data:
        data = data["tools"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ToolDefinitionError("the file defines no tools")
    tools = [parse_tool(item, f"tools[{i}]") for i, item in enumerate(items)]
    names = [t.name for t in tools]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ToolDefinitionError(f"tool(s) defined twice: {', '.join(twice)}")
    return tools


def load_tool_file(text: str, filename: str = "tools.yaml") -> list[ToolDefinition]:
    """Parse a registry file's text (JSON when it ends in .json, else YAML, which also reads JSON)."""
    try:
        data = json.loads(text) if filename.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ToolDefinitionError(
            f"{filename}: not valid {'JSON' if filename.endswith('.json') else 'YAML'}: {exc}"
        ) from None
    return parse_tools(data)
