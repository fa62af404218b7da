"""Prompt templates: sandboxed Jinja2, a typed variables schema, and rendering to chat messages.

Templates run in the sandbox of `prompts/registry/sandbox.py` (Jinja2's, with no access to Python internals such as
`__class__`, and bounded in time and in the size of what they build and write), with `StrictUndefined` (a
misspelt name is an error, never an empty string) and no autoescaping (prompts are not HTML). Variables are
checked against the prompt's schema before rendering: a missing required variable, a wrongly typed one, or
one the prompt does not declare is a `VariableError` naming it.

A canonical template is a dict: {"type": "chat", "messages": [{"role", "content"}, ...]} or {"type": "text",
"text": "..."}, plus "variables" (name -> spec) and "config" (model parameters); see `prompts/registry/files.py`.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from jinja2 import Template, meta, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaTemplateError

from pilothouse.prompts.registry.sandbox import (
    TOO_EXPENSIVE,
    TOO_LARGE,
    PromptSandbox,
    RenderLimitError,
    budget,
    generate,
)

VARIABLE_TYPES = ("string", "number", "integer", "boolean", "array", "object")
_SPEC_KEYS = {"type", "required", "default", "enum", "description"}


class VariableError(Exception):
    """A request's variables do not fit the prompt's schema. `name` is the variable concerned."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class TemplateError(ValueError):
    """A prompt definition is invalid (syntax error, unsafe construct, bad variables schema).

    `where` says which part (e.g. `messages[1].content`), `line` the line within it when known."""

    def __init__(self, message: str, *, where: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.line = line


class TemplateRenderError(Exception):
    """Rendering failed at run time although the variables fit (a sandbox violation, or a bound of
    `prompts/registry/sandbox.py` was reached). `code` is the API error code: `prompt_render_error`, or
    `template_too_expensive` / `template_output_too_large` for the bounds."""

    def __init__(self, message: str, *, code: str = "prompt_render_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_ENV = PromptSandbox()
_COMPILED: dict[str, Template] = {}
_COMPILED_LOCK = threading.Lock()
_COMPILED_MAX = 4096


def _compile(source: str) -> Template:
    template = _COMPILED.get(source)
    if template is None:
        template = _ENV.compile_source(source)
        with _COMPILED_LOCK:
            if len(_COMPILED) >= _COMPILED_MAX:
                _COMPILED.clear()
            _COMPILED[source] = template
    return template


def type_name(value: Any) -> str:
    """The schema type name of a JSON value (`integer` for 3, `number` for 3.5, `null` for None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _fits(kind: str, value: Any) -> bool:
    actual = type_name(value)
    return actual == kind or (kind == "number" and actual == "integer")


_ARTICLE = {"string": "a", "number": "a", "integer": "an", "boolean": "a", "array": "an", "object": "an"}


# -- the schema -------------------------------------------------------------------------------------------------
def normalize_variables(raw: Any) -> dict[str, dict[str, Any]]:
    """Check a `variables` section and return its canonical form.

    Each entry is a spec {type, required, default?, enum?, description?} or, as shorthand, just the type
    name (`question: string`). `required` defaults to true, or false when a default is given."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TemplateError("'variables' must be a mapping of variable name -> {type: ...}", where="variables")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in raw.items():
        where = f"variables.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            raise TemplateError(f"invalid variable name {name!r}: use letters, digits and '_'", where="variables")
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, dict):
            raise TemplateError(f"'{where}' must be a mapping such as {{type: string}}", where=where)
        unknown = sorted(set(spec) - _SPEC_KEYS)
        if unknown:
            raise TemplateError(
                f"'{where}' has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(_SPEC_KEYS))}",
                where=where,
            )
        kind = spec.get("type", "string")
        if kind not in VARIABLE_TYPES:
            raise TemplateError(
                f"'{where}.type' must be one of {', '.join(VARIABLE_TYPES)}, got {kind!r}", where=f"{where}.type"
            )
        has_default = "default" in spec
        required = spec.get("required", not has_default)
        if not isinstance(required, bool):
            raise TemplateError(f"'{where}.required' must be true or false", where=f"{where}.required")
        if required and has_default:
            raise TemplateError(f"'{where}' has a default, so it cannot also be required", where=where)
        norm: dict[str, Any] = {"type": kind, "required": required}
        if "enum" in spec:
            enum = spec["enum"]
            if not isinstance(enum, list) or not enum:
                raise TemplateError(f"'{where}.enum' must be a non-empty list", where=f"{where}.enum")
            for item in enum:
                if not _fits(kind, item):
                    raise TemplateError(
                        f"'{where}.enum' value {item!r} is not {_ARTICLE[kind]} {kind}", where=f"{where}.enum"
                    )
            norm["enum"] = enum
        if has_default:
            default = spec["default"]
            if default is not None and not _fits(kind, default):
                raise TemplateError(
                    f"'{where}.default' must be {_ARTICLE[kind]} {kind}, got {type_name(default)}",
                    where=f"{where}.default",
                )
            if "enum" in norm and default is not None and default not in norm["enum"]:
                raise TemplateError(f"'{where}.default' {default!r} is not one of its enum", where=f"{where}.default")
            norm["default"] = default
        if "description" in spec:
            if not isinstance(spec["description"], str):
                raise TemplateError(f"'{where}.description' must be a string", where=f"{where}.description")
            norm["description"] = spec["description"]
        out[name] = norm
    return out


def _sources(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, template source) for every templated string of a canonical template."""
    if template.get("type") == "text":
        return [("text", str(template.get("text") or ""))]
    return [(f"messages[{i}].content", str(m.get("content") or "")) for i, m in enumerate(template["messages"])]


def _config_sources(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, template source) for the templated strings of the configuration: the `rag.query` to retrieve for."""
    rag = (template.get("config") or {}).get("rag")
    query = rag.get("query") if isinstance(rag, dict) else None
    return [("rag.query", query)] if isinstance(query, str) else []


def _check_safe(ast: nodes.Template, where: str) -> None:
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            attr = node.arg.value
        if attr is not None and attr.startswith("_"):
            raise TemplateError(
                f"{where} line {node.lineno}: access to '{attr}' is not allowed in prompt templates "
                "(names starting with '_' are blocked by the sandbox)",
                where=where,
                line=node.lineno,
            )


def check_template(template: dict[str, Any]) -> None:
    """Check a canonical template's Jinja2 syntax, safety and use of variables; TemplateError with the line.

    Every name a template uses must be declared under `variables` (the schema is the prompt's contract)."""
    declared = set(template.get("variables") or {})
    for where, source in [*_sources(template), *_config_sources(template)]:
        try:
            ast = _ENV.parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(
                f"{where} line {exc.lineno}: template syntax error: {exc.message}", where=where, line=exc.lineno
            ) from None
        except RecursionError:
            raise TemplateError(f"{where}: the template is nested too deeply", where=where) from None
        _check_safe(ast, where)
        undeclared = sorted(meta.find_undeclared_variables(ast) - declared)
        if undeclared:
            names = ", ".join(repr(n) for n in undeclared)
            raise TemplateError(
                f"{where} uses variable(s) {names} that are not declared under 'variables' "
                f"(add e.g. `{undeclared[0]}: {{type: string}}`)",
                where=where,
            )
        try:  # what renders it, so a template that parses but cannot compile is refused at push time
            _compile(source)
        except (SyntaxError, RecursionError, MemoryError):
            raise TemplateError(f"{where}: the template nests blocks too deeply", where=where) from None


# -- rendering --------------------------------------------------------------------------------------------------
def validate_variables(schema: dict[str, dict[str, Any]], variables: dict[str, Any] | None) -> dict[str, Any]:
    """The complete set of values to render with: checked against `schema`, defaults applied.

    Optional variables without a default are None when not given."""
    values = {} if variables is None else variables
    if not isinstance(values, dict):
        raise VariableError("variables", f"'variables' must be an object, got {type_name(values)}")
    for name in values:
        if name not in schema:
            declared = ", ".join(repr(n) for n in schema) or "none"
            raise VariableError(str(name), f"unknown variable '{name}': this prompt declares {declared}")
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        kind = spec["type"]
        if name not in values:
            if "default" in spec:
                out[name] = copy.deepcopy(spec["default"])
                continue
            if spec.get("required", True):
                raise VariableError(name, f"missing required variable '{name}' ({kind})")
            out[name] = None
            continue
        value = values[name]
        if value is None and not spec.get("required", True):
            out[name] = None
            continue
        if not _fits(kind, value):
            raise VariableError(name, f"variable '{name}' must be {_ARTICLE[kind]} {kind}, got {type_name(value)}")
        enum = spec.get("enum")
        if enum is not None and value not in enum:
            allowed = ", ".join(repr(v) for v in enum)
            raise VariableError(name, f"variable '{name}' must be one of {allowed}, got {value!r}")
        out[name] = value
    return out


def _render_one(source: str, values: dict[str, Any], where: str) -> str:
    try:
        return generate(_compile(source), values)
    except RenderLimitError as exc:
        raise TemplateRenderError(f"{where}: {exc.message}", code=exc.code) from None
    except RecursionError:
        raise TemplateRenderError(
            f"{where}: the template recurses too deeply (a macro calling itself?)", code=TOO_EXPENSIVE
        ) from None
    except MemoryError:
        raise TemplateRenderError(f"{where}: the template needs too much memory", code=TOO_LARGE) from None
    except SecurityError as exc:
        raise TemplateRenderError(f"{where}: blocked by the template sandbox: {exc}") from None
    except UndefinedError as exc:
        raise TemplateRenderError(f"{where}: {exc}") from None
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"{where} line {exc.lineno}: template syntax error: {exc.message}") from None
    except (JinjaTemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateRenderError(f"{where}: {type(exc).__name__}: {exc}") from None


def _precompile(source: str, where: str) -> None:
    """Compile (and cache) `source` before a render budget starts."""
    try:
        _compile(source)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"{where} line {exc.lineno}: template syntax error: {exc.message}") from None
    except (SyntaxError, RecursionError, MemoryError):
        raise TemplateRenderError(f"{where}: the template is nested too deeply", code=TOO_EXPENSIVE) from None


def render_with(template: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    """Render already-validated values (see `validate_variables`). All messages together get one budget of
    time and output (`prompts/registry/sandbox.py`); the source of each is compiled (and cached) before it starts.
    CPU-bound for up to `RENDER_TIMEOUT_S`: callers on an event loop run it in a worker thread."""
    sources = _sources(template)
    for where, source in sources:
        _precompile(source, where)
    with budget():
        contents = [_render_one(source, values, where) for where, source in sources]
    if template.get("type") == "text":
        return [{"role": "user", "content": contents[0]}]
    messages: list[dict[str, Any]] = []
    for msg, content in zip(template["messages"], contents, strict=True):
        out = {k: v for k, v in msg.items() if k != "content"}
        out["content"] = content
        messages.append(out)
    return messages


def render_source(source: str, values: dict[str, Any], *, where: str) -> str:
    """One templated string (a prompt's `rag.query`) rendered with already-validated values, in its own budget."""
    _precompile(source, where)
    with budget():
        return _render_one(source, values, where)


def render(template: dict[str, Any], variables: dict[str, Any]) -> list[dict[str, Any]]:
    """Chat messages from a canonical template and the caller's variables (a text prompt becomes one user
    message). Raises VariableError (the caller's values) or TemplateRenderError (the template itself)."""
    return render_with(template, validate_variables(template.get("variables") or {}, variables))


def render_text(template: dict[str, Any], variables: dict[str, Any]) -> str:
    """The rendered text of a text prompt (or the contents of a chat prompt's messages, joined)."""
    return "\n\n".join(str(m["content"]) for m in render(template, variables))
