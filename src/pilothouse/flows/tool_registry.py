"""Python callables a flow can call as tools: `@flow_tool`, and the registry the tool and agent steps look in.

A tool is registered with a name, a JSON Schema for its arguments (inferred from the function's signature
with pydantic, or given), a risk level (`low`, `medium`, `high`: the guard issue's levels, tools/registry.py)
and a timeout:

    @flow_tool(risk="high", timeout_s=10)
    def refund_payment(amount: float, currency: str = "EUR", idempotency_key: str = "") -> dict:
        ...

A parameter named `idempotency_key` is not part of the schema: the runtime passes the call's key there, so a
tool whose effect happened but whose result was not yet recorded when a worker died can recognise the retry.
The definition is a `pilothouse.tools.registry.ToolDefinition`, so the same tool can be registered in a
project's tool registry (`pilothouse tools register`) and granted to agents.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints, overload

from jsonschema.protocols import Validator
from pydantic import BaseModel, ConfigDict, create_model
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from pilothouse.tools.arguments import compile_schema
from pilothouse.tools.registry import NAME, RISKS, Risk, ToolDefinition, ToolDefinitionError, check_schema

__all__ = ["DEFAULT_TOOLS", "KEY_PARAMETER", "FlowTool", "ToolRegistry", "flow_tool", "infer_schema"]

KEY_PARAMETER = "idempotency_key"
"""The parameter through which a tool receives its call's idempotency key (never offered to a model)."""
DEFAULT_TIMEOUT_S = 30.0

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True, eq=False)
class FlowTool:
    """One registered tool: its definition (name, risk, description, JSON Schema) and the callable."""

    definition: ToolDefinition
    fn: Callable[..., Any]
    timeout_s: float = DEFAULT_TIMEOUT_S
    takes_key: bool = False
    """Whether `fn` has an `idempotency_key` parameter."""
    arguments_model: type[BaseModel] | None = None
    """The pydantic model of the inferred schema: arguments are converted through it (a parameter typed as a
    model gets that model, not a dict); None when the schema was given."""

    def keyword_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The call's keyword arguments (already valid against the JSON Schema)."""
        if self.arguments_model is None:
            return dict(arguments)
        model = self.arguments_model.model_validate(arguments)
        return {name: getattr(model, name) for name in type(model).model_fields}

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def risk(self) -> Risk:
        return self.definition.risk

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def openai_spec(self) -> dict[str, Any]:
        """The tool as an OpenAI request offers it to a model (`tools=[...]`)."""
        fn: dict[str, Any] = {"name": self.name, "parameters": self.definition.parameters}
        if self.definition.description:
            fn["description"] = self.definition.description
        return {"type": "function", "function": fn}


class ToolRegistry:
    """Tools by name; `DEFAULT_TOOLS` is the one `@flow_tool` fills unless given another."""

    def __init__(self) -> None:
        self._tools: dict[str, FlowTool] = {}
        self._validators: dict[str, Validator] = {}

    def register(self, tool: FlowTool, *, replace: bool = False) -> FlowTool:
        """Add `tool`; registering another callable under a taken name is an error unless `replace`."""
        found = self._tools.get(tool.name)
        if found is not None and found.fn is not tool.fn and not replace and not _same_function(found.fn, tool.fn):
            raise ToolDefinitionError(
                f"tool {tool.name!r} is already registered (by {_qualname(found.fn)}); "
                "pick another name or pass replace=True"
            )
        self._tools[tool.name] = tool
        self._validators.pop(tool.name, None)
        return tool

    def get(self, name: str) -> FlowTool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def validator(self, tool: FlowTool) -> Validator:
        """The compiled schema of `tool` (built once)."""
        found = self._validators.get(tool.name)
        if found is None:
            found = self._validators[tool.name] = compile_schema(tool.definition.parameters)
        return found

    def specs(self, names: Collection[str]) -> list[dict[str, Any]]:
        """The OpenAI `tools` list for `names`; an unknown name is a ToolDefinitionError naming it."""
        missing = sorted(n for n in names if n not in self._tools)
        if missing:
            raise ToolDefinitionError(
                f"unknown tool(s) {', '.join(missing)}: register them with @flow_tool (known: "
                f"{', '.join(self.names()) or 'none'})"
            )
        return [self._tools[n].openai_spec() for n in names]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)


DEFAULT_TOOLS = ToolRegistry()


@overload
def flow_tool(fn: F, /) -> F: ...


@overload
def flow_tool(
    fn: None = None,
    *,
    name: str | None = None,
    risk: Risk = "low",
    description: str | None = None,
    schema: dict[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    registry: ToolRegistry | None = None,
) -> Callable[[F], F]: ...


def flow_tool(
    fn: F | None = None,
    *,
    name: str | None = None,
    risk: Risk = "low",
    description: str | None = None,
    schema: dict[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    registry: ToolRegistry | None = None,
) -> Any:
    """Register a function as a flow tool (usable bare, `@flow_tool`, or with options, `@flow_tool(risk=...)`).

    The schema is inferred from the signature unless given; the description defaults to the docstring's first
    paragraph. The function itself is returned unchanged, so it can still be called directly."""

    def register(func: F) -> F:
        target = registry if registry is not None else DEFAULT_TOOLS
        target.register(
            make_tool(func, name=name, risk=risk, description=description, schema=schema, timeout_s=timeout_s)
        )
        return func

    return register(fn) if fn is not None else register


def make_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    risk: Risk = "low",
    description: str | None = None,
    schema: dict[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> FlowTool:
    """A FlowTool from a function; ToolDefinitionError names what is wrong."""
    tool_name = name or getattr(fn, "__name__", "")
    where = f"tool {tool_name!r}"
    if not isinstance(tool_name, str) or not NAME.match(tool_name):
        raise ToolDefinitionError(f"{where}: the name must be 1-64 letters, digits, '_' or '-'")
    if risk not in RISKS:
        raise ToolDefinitionError(f"{where}: 'risk' must be one of {', '.join(RISKS)}, got {risk!r}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not 0 < timeout_s <= 3600:
        raise ToolDefinitionError(f"{where}: 'timeout_s' must be a number of seconds in (0, 3600]")
    text = description if description is not None else _doc_summary(fn)
    model = None if schema is not None else arguments_model(fn)
    parameters = check_schema(schema if schema is not None else _schema_of(model), where)
    definition = ToolDefinition(name=tool_name, risk=risk, description=text[:2000], parameters=parameters)
    takes_key = KEY_PARAMETER in inspect.signature(fn).parameters
    return FlowTool(definition, fn, float(timeout_s), takes_key=takes_key, arguments_model=model)


def infer_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema of `fn`'s keyword arguments (no additional properties), from its type hints."""
    return _schema_of(arguments_model(fn))


def _schema_of(model: type[BaseModel] | None) -> dict[str, Any]:
    assert model is not None
    try:
        schema = model.model_json_schema()
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError) as exc:
        raise ToolDefinitionError(f"tool {model.__name__!r}: no JSON Schema for its parameters ({exc})") from None
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


def arguments_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """A pydantic model of `fn`'s keyword arguments (extra arguments forbidden)."""
    where = f"tool {getattr(fn, '__name__', fn)!r}"
    signature = inspect.signature(fn)
    try:
        hints = get_type_hints(fn)
    except (NameError, TypeError) as exc:
        raise ToolDefinitionError(f"{where}: its type hints cannot be read ({exc}); pass schema=...") from None
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.name == KEY_PARAMETER:
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ToolDefinitionError(f"{where}: *args / **kwargs cannot be described as a schema; pass schema=...")
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ToolDefinitionError(f"{where}: positional-only parameter {param.name!r}: tools take keywords")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    try:
        model: type[BaseModel] = create_model(
            f"{getattr(fn, '__name__', 'tool')}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        model.model_json_schema()
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError) as exc:
        raise ToolDefinitionError(f"{where}: no JSON Schema for its parameters ({exc}); pass schema=...") from None
    return model


def _doc_summary(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    """The same function defined again (a flow file loaded twice, by the CLI then a worker)."""
    return _qualname(a) == _qualname(b)
