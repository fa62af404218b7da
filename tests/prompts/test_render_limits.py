"""The template sandbox's bounds (prompts/registry/sandbox.py): no template runs much past RENDER_TIMEOUT_S or builds,
writes or outputs more than its size caps, whichever construct it uses; ordinary templates are unaffected."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pilothouse.prompts.registry.sandbox import MAX_OUTPUT_CHARS, RENDER_TIMEOUT_S, TOO_EXPENSIVE, TOO_LARGE
from pilothouse.prompts.registry.templates import (
    TemplateError,
    TemplateRenderError,
    check_template,
    normalize_variables,
    render,
)

NESTED_RANGES = "{% for i in range(15000) %}{% for j in range(15000) %}{% endfor %}{% endfor %}"


def chat(content: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "chat",
        "messages": [{"role": "user", "content": content}],
        "variables": normalize_variables(variables),
        "config": {},
    }


def refused(content: str, code: str, values: dict[str, Any] | None = None, **variables: Any) -> TemplateRenderError:
    started = time.monotonic()
    with pytest.raises(TemplateRenderError) as caught:
        render(chat(content, variables or None), values or {})
    assert time.monotonic() - started < RENDER_TIMEOUT_S + 1.0, "the bound did not stop the render in time"
    assert caught.value.code == code, caught.value.message
    return caught.value


@pytest.mark.parametrize(
    "content",
    [
        NESTED_RANGES,
        "{% set r = range(15000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
        "{% set s = 'x' * 20000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
        "{% for i in range(15000) %}{% for j in range(15000) %}{{ '' }}{% endfor %}{% endfor %}",
        "{% for i in range(3000) %}{% for j in range(3000) %}{% if i == j %}{% endif %}{% endfor %}{% endfor %}",
    ],
)
def test_long_running_loops_are_stopped(content: str) -> None:
    error = refused(content, TOO_EXPENSIVE)
    assert f"took longer than {RENDER_TIMEOUT_S:g} s" in error.message


def test_loops_over_a_variable_are_stopped_too() -> None:
    refused(
        "{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}",
        TOO_EXPENSIVE,
        {"xs": list(range(20000))},
        xs="array",
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{{ 'x' * 10**9 }}", "repetition"),
        ("{{ ['x'] * 10**9 }}", "repetition"),
        ("{% set a = 'x' * 900000 %}{{ [a] * 1000 }}", "repetition"),  # a list that prints as 900 MB
        ("{{ 'x'.ljust(10**9) }}", "ljust"),
        ("{{ 'x'.zfill(10**9) }}", "zfill"),
        ("{{ 'x'|center(10**9) }}", "center"),
        ("{{ ('x' * 1000000)|replace('x', 'yy') }}", "replace"),
        ("{{ ('x' * 1000000).replace('x', 'yy') }}", "replace"),
        ("{{ ('a\n' * 400000)|indent(100) }}", "indent"),
        ("{{ '%999999999d' % 1 }}", "formatting"),
        ("{{ '%999999999d'|format(1) }}", "format"),
        ("{{ '{:>999999999}'.format(1) }}", "format"),
        ("{{ range(1000)|join('x' * 10000) }}", "join"),
        ("{{ ('-' * 600000).join(['a', 'b', 'c']) }}", "join"),
        ("{{ ['x' * 600000, 'y' * 600000] }}", "literal"),
        ("{{ ('x' * 600000) ~ ('y' * 600000) }}", "'~'"),
        ("{{ range(100000)|map('center', 1000000)|join }}", "'map'"),
        ("{{ [1]|batch(10**9, 0)|list }}", "batch"),
        ("{{ [1]|slice(10**9, 0)|list }}", "slice"),
        ("{{ (9 ** 999) ** 999 }}", "integer"),
        ("{{ 9 ** 999999 }}", "exponent"),
        ("{{ lipsum(100000) }}", "lipsum"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "'~'"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "'+'"),
        ("{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}", "literal"),
    ],
)
def test_values_too_large_are_refused_before_they_are_built(content: str, words: str) -> None:
    error = refused(content, TOO_LARGE)
    assert words in error.message


@pytest.mark.parametrize(
    "content",
    [
        "{% for i in range(15000) %}{% for j in range(15000) %}" + "x" * 50 + "{% endfor %}{% endfor %}",
        "{{ 'x' * 1000000 }}{{ 'x' * 1000000 }}",
        "{% for i in range(100000) %}" + "z" * 1000 + "{% endfor %}",
    ],
)
def test_output_is_capped(content: str) -> None:
    error = refused(content, TOO_LARGE)
    assert f"longer than {MAX_OUTPUT_CHARS:,} characters" in error.message


def test_text_written_inside_macros_and_blocks_counts() -> None:
    body = "{% for i in range(1000) %}" + "y" * 10000 + "{% endfor %}"
    for content in (
        "{% macro m() %}" + body + "{% endmacro %}{% set s = m() %}{{ s|length }}",
        "{% set s %}" + body + "{% endset %}{{ s|length }}",
        "{% macro d(n) %}{% if n %}{{ d(n-1) }}{{ d(n-1) }}{% else %}xxxxxxxxxx{% endif %}{% endmacro %}{{ d(30) }}",
    ):
        assert "wrote more than" in refused(content, TOO_LARGE).message


def test_quadratic_sums_are_refused() -> None:
    content = "{% set l = range(100)|list %}{{ ([l] * 1000)|sum(start=[])|length }}"
    assert "'sum' filter" in refused(content, TOO_EXPENSIVE).message
    assert render(chat("{{ [[1], [2, 3]]|sum(start=[]) }}"), {})[0]["content"] == "[1, 2, 3]"


def test_templates_too_deeply_nested_to_compile_are_refused_at_push() -> None:
    for content in ("{% if x %}" * 100 + "{% endif %}" * 100, "{% for a in x %}" * 30 + "{% endfor %}" * 30):
        with pytest.raises(TemplateError, match="nests blocks too deeply"):
            check_template(chat(content, {"x": "string"}))
    with pytest.raises(TemplateError, match="nested too deeply"):
        check_template(chat("{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}"))


def test_recursion_and_range_size() -> None:
    assert (
        "recurses too deeply"
        in refused("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}", TOO_EXPENSIVE).message
    )
    assert "range() may have at most" in refused("{{ range(10**18)|length }}", TOO_EXPENSIVE).message


def test_the_budget_covers_all_messages_together() -> None:
    half = "{{ 'x' * 600000 }}"
    template = {
        "type": "chat",
        "messages": [{"role": "system", "content": half}, {"role": "user", "content": half}],
        "variables": {},
        "config": {},
    }
    with pytest.raises(TemplateRenderError) as caught:
        render(template, {})
    assert caught.value.code == TOO_LARGE and caught.value.message.startswith("messages[1].content:")


def test_ordinary_templates_render_as_before() -> None:
    content = (
        "{% set ns = namespace(n=0) %}{% macro item(d) %}- {{ d.title|upper }}{% endmacro %}"
        "{% for d in docs if d.keep %}{{ item(d) }} ({{ loop.index }}/{{ loop.length }})\n"
        "{% set ns.n = ns.n + 1 %}{% endfor %}"
        "{{ ns.n }} {{ '%-3s|' % 'ab' }}{{ '{:>4}'.format(7) }} {{ tags|join(', ') }} {{ 'a' ~ 1 ~ [2] }}"
        " {{ (range(3)|list) * 2 }} {{ 2 ** 10 }} {{ {'k': 'v'}|tojson }} {{ 'x'|center(5) }}|"
        "{{ 'l1\nl2'|indent(2) }} {{ 'abc'|replace('b', 'BB') }} {{ range(5)|batch(2)|list }}"
        "{{ range(5)|slice(2)|list }}"
    )
    values = {
        "docs": [{"title": "one", "keep": True}, {"title": "two", "keep": False}, {"title": "three", "keep": True}],
        "tags": ["a", "b"],
    }
    (message,) = render(chat(content, {"docs": "array", "tags": "array"}), values)
    assert message["content"] == (
        "- ONE (1/2)\n- THREE (2/2)\n"
        '2 ab |   7 a, b a1[2] [0, 1, 2, 0, 1, 2] 1024 {"k": "v"}   x  |l1\n  l2 aBBc '
        "[[0, 1], [2, 3], [4]][[0, 1, 2], [3, 4]]"
    )


def test_large_but_allowed_values_still_render() -> None:
    (message,) = render(chat("{{ 'x' * 900000 }}{{ range(100000)|list|length }}"), {})
    assert len(message["content"]) == 900000 + 6


def test_templates_cannot_mutate_their_inputs() -> None:
    error = refused("{{ xs.append(1) }}", "prompt_render_error", {"xs": []}, xs="array")
    assert "sandbox" in error.message
