"""Templates: variables checked against the schema, sandboxed rendering, definition errors."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.prompts.registry.templates import (
    TemplateError,
    TemplateRenderError,
    VariableError,
    check_template,
    normalize_variables,
    render,
    render_text,
    validate_variables,
)


def chat(content: str, variables: dict[str, Any] | None = None, system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": content})
    return {"type": "chat", "messages": messages, "variables": normalize_variables(variables), "config": {}}


SCHEMA = normalize_variables(
    {
        "question": {"type": "string"},
        "count": {"type": "integer", "default": 2},
        "ratio": {"type": "number", "required": False},
        "tone": {"type": "string", "enum": ["warm", "formal"], "default": "warm"},
        "items": {"type": "array", "required": False},
        "meta": {"type": "object", "required": False},
        "flag": {"type": "boolean", "required": False},
    }
)


def test_render_chat_and_text() -> None:
    template = chat("Q: {{ question }}", {"question": "string"}, system="Be brief.")
    assert render(template, {"question": "Where?"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: Where?"},
    ]
    text = {"type": "text", "text": "Sum up {{ doc }}", "variables": normalize_variables({"doc": "string"})}
    assert render(text, {"doc": "this"}) == [{"role": "user", "content": "Sum up this"}]
    assert render_text(text, {"doc": "that"}) == "Sum up that"


def test_defaults_and_optional_values() -> None:
    values = validate_variables(SCHEMA, {"question": "q"})
    assert values == {
        "question": "q",
        "count": 2,
        "ratio": None,
        "tone": "warm",
        "items": None,
        "meta": None,
        "flag": None,
    }
    assert (
        validate_variables(SCHEMA, {"question": "q", "ratio": 1, "items": [1], "meta": {}, "flag": False})["ratio"] == 1
    )
    loops = chat(
        "{% for i in items %}[{{ i }}]{% endfor %}{{ n }}", {"items": "array", "n": {"type": "integer", "default": 5}}
    )
    assert render(loops, {"items": ["a", "b"]})[0]["content"] == "[a][b]5"


@pytest.mark.parametrize(
    ("values", "name", "message"),
    [
        ({}, "question", "missing required variable 'question' (string)"),
        ({"question": 3}, "question", "variable 'question' must be a string, got integer"),
        ({"question": None}, "question", "variable 'question' must be a string, got null"),
        ({"question": "q", "count": 2.5}, "count", "variable 'count' must be an integer, got number"),
        ({"question": "q", "count": True}, "count", "variable 'count' must be an integer, got boolean"),
        ({"question": "q", "ratio": "1"}, "ratio", "variable 'ratio' must be a number, got string"),
        ({"question": "q", "items": "a,b"}, "items", "must be an array, got string"),
        ({"question": "q", "meta": []}, "meta", "must be an object, got array"),
        ({"question": "q", "flag": "yes"}, "flag", "must be a boolean, got string"),
        ({"question": "q", "tone": "rude"}, "tone", "must be one of 'warm', 'formal', got 'rude'"),
        ({"question": "q", "extra": 1}, "extra", "unknown variable 'extra'"),
    ],
)
def test_variable_errors_name_the_variable(values: dict[str, Any], name: str, message: str) -> None:
    with pytest.raises(VariableError) as caught:
        validate_variables(SCHEMA, values)
    assert caught.value.name == name
    assert message in caught.value.message


def test_variables_must_be_an_object() -> None:
    with pytest.raises(VariableError, match="'variables' must be an object, got array") as caught:
        render(chat("hi"), [])  # type: ignore[arg-type]
    assert caught.value.name == "variables"


def test_sandbox_blocks_python_internals_at_render_time() -> None:
    for source in ("{{ ''.__class__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ x['__class__'] }}"):
        template = chat(source, {"x": {"type": "object", "default": {}}})
        with pytest.raises(TemplateRenderError, match="blocked by the template sandbox"):
            render(template, {})


def test_sandbox_bounds_memory_hungry_expressions() -> None:
    with pytest.raises(TemplateRenderError, match="repetition"):
        render(chat("{{ 'a' * 10000000 }}"), {})
    with pytest.raises(TemplateRenderError, match="exponent"):
        render(chat("{{ 9 ** 999999 }}"), {})
    assert render(chat("{{ 'ab' * 3 }}{{ 2 ** 3 }}"), {})[0]["content"] == "ababab8"


def test_no_autoescape_and_strict_undefined() -> None:
    template = chat("{{ html }}", {"html": "string"})
    assert render(template, {"html": "<b>&</b>"})[0]["content"] == "<b>&</b>"
    nested = chat("{{ meta.missing }}", {"meta": "object"})
    with pytest.raises(TemplateRenderError, match="missing"):
        render(nested, {"meta": {}})


def test_check_template() -> None:
    check_template(chat("{{ q }} {{ range(2)|list }} {% for i in q %}{{ loop.index }}{% endfor %}", {"q": "string"}))
    with pytest.raises(TemplateError, match="line 2: template syntax error") as caught:
        check_template(chat("ok\n{% if %}"))
    assert caught.value.line == 2 and caught.value.where == "messages[0].content"
    with pytest.raises(TemplateError, match="'_secret' is not allowed"):
        check_template(chat("{{ q._secret }}", {"q": "object"}))
    with pytest.raises(TemplateError, match="'nope' that are not declared"):
        check_template(chat("{{ nope }}"))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be a mapping"),
        ({"1x": "string"}, "invalid variable name"),
        ({"q": {"type": "string", "min": 1}}, "unknown key(s) 'min'"),
        ({"q": {"type": "string", "required": True, "default": "a"}}, "cannot also be required"),
        ({"q": {"type": "integer", "default": "a"}}, "default' must be an integer, got string"),
        ({"q": {"type": "string", "enum": []}}, "non-empty list"),
        ({"q": {"type": "string", "enum": [1]}}, "is not a string"),
        ({"q": {"type": "string", "enum": ["a"], "default": "b"}}, "is not one of its enum"),
        ({"q": {"type": "string", "required": "yes"}}, "true or false"),
    ],
)
def test_invalid_variable_schemas(raw: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        normalize_variables(raw)


def test_schema_shorthand_and_canonical_form() -> None:
    assert normalize_variables({"q": "string", "n": {"type": "number", "default": 1, "description": "d"}}) == {
        "q": {"type": "string", "required": True},
        "n": {"type": "number", "required": False, "default": 1, "description": "d"},
    }
