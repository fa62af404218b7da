"""Prompt files: YAML and Markdown parsing, canonical templates and their hashes, test files, writing back."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.prompts.registry.files import (
    PromptFileError,
    content_hash,
    discover,
    file_name,
    parse_prompt_file,
    parse_test_file,
    to_yaml,
)

SUPPORT = """\
# prompts/support-answer.yaml
name: support-answer
model: smollm2-135m
temperature: 0
max_tokens: 64
variables:
  question: {type: string}
messages:
  - role: system
    content: You answer customer questions in one short sentence.
  - role: user
    content: "{{ question }}"
"""

SUPPORT_MD = """\
---
# the same prompt, as Markdown
name: support-answer
model: smollm2-135m
temperature: 0
max_tokens: 64
variables:
  question: {type: string}
---

## system

You answer customer questions in one short sentence.

## User
{{ question }}
"""


def test_the_issue_example_parses_as_it_stands() -> None:
    d = parse_prompt_file("support-answer.yaml", SUPPORT)
    assert d.name == "support-answer"
    assert d.template == {
        "type": "chat",
        "messages": [
            {"role": "system", "content": "You answer customer questions in one short sentence."},
            {"role": "user", "content": "{{ question }}"},
        ],
        "variables": {"question": {"type": "string", "required": True}},
        "config": {"model": "smollm2-135m", "temperature": 0, "max_tokens": 64},
    }
    assert d.source_text == SUPPORT and d.source_format == "yaml"
    assert len(d.content_hash) == 64 and d.content_hash == content_hash(d.template)


def test_markdown_with_role_headings_equals_the_yaml() -> None:
    md = parse_prompt_file("support-answer.md", SUPPORT_MD)
    assert md.source_format == "md"
    assert md.template == parse_prompt_file("support-answer.yaml", SUPPORT).template
    assert md.content_hash == parse_prompt_file("support-answer.yaml", SUPPORT).content_hash


def test_markdown_plain_body_is_one_user_message_or_the_text() -> None:
    chat = parse_prompt_file("s.md", "---\nname: s\nvariables: {topic: string}\n---\nWrite about {{ topic }}.\n\n")
    assert chat.template["messages"] == [{"role": "user", "content": "Write about {{ topic }}."}]
    text = parse_prompt_file("t.md", "---\nname: t\ntype: text\n---\n\nLine one\n\nline two\n")
    assert text.template["type"] == "text" and text.template["text"] == "Line one\n\nline two"


def test_comments_and_formatting_do_not_change_the_hash() -> None:
    base = parse_prompt_file("a.yaml", SUPPORT).content_hash
    reformatted = """\
name: support-answer   # trailing comment
messages:
- {role: system, content: You answer customer questions in one short sentence.}
- role: user
  content: '{{ question }}'
variables:
  question:
    type: string
    required: true
max_tokens: 64
temperature: 0
model: smollm2-135m
"""
    assert parse_prompt_file("a.yaml", reformatted).content_hash == base
    assert parse_prompt_file("a.yaml", SUPPORT.replace("0\n", "0.2\n", 1)).content_hash != base
    assert parse_prompt_file("a.yaml", SUPPORT.replace("short", "brief")).content_hash != base


def test_canonical_yaml_round_trips_to_the_same_hash() -> None:
    rich = """\
name: rich
description: Every feature at once.
model: m
temperature: 0.3
top_p: 0.9
max_tokens: 10
stop: ["\\n\\n"]
seed: 7
response_format: {type: json_object}
tools:
  - type: function
    function: {name: lookup, parameters: {type: object, properties: {q: {type: string}}}}
tool_choice: auto
variables:
  items: {type: array, description: things}
  n: {type: integer, default: 3}
  mode: {type: string, enum: [a, b], required: false}
  flag: boolean
messages:
  - role: system
    content: |
      Multi-line
      {% for i in items %}- {{ i }}
      {% endfor %}
  - role: user
    name: alice
    content: "{{ n }} {{ mode }} {{ flag }}"
"""
    for path, text in (("rich.yaml", rich), ("support-answer.md", SUPPORT_MD)):
        d = parse_prompt_file(path, text)
        again = parse_prompt_file("again.yaml", to_yaml(d.name, d.template))
        assert again.template == d.template
        assert again.content_hash == d.content_hash
    text_prompt = parse_prompt_file("t.yaml", "name: t\ntext: 'Summarise: {{ doc }}'\nvariables: {doc: string}\n")
    assert parse_prompt_file("t.yaml", to_yaml("t", text_prompt.template)).content_hash == text_prompt.content_hash


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        ("x.yaml", "name: x\nmessages:\n  - role: user\n    content: {{ q }}\n", "line 4: invalid YAML"),
        ("x.yaml", "name: x\nmessages:\n  - role: user\n    content: {{ q }}\n", "quote values"),
        ("x.yaml", "- just\n- a list\n", "a prompt file is a YAML mapping"),
        ("x.yaml", "messages: [{role: user, content: hi}]\n", "'name' is required"),
        ("x.yaml", "name: X Y\nmessages: [{role: user, content: hi}]\n", "invalid prompt name"),
        ("x.yaml", "name: x\ntemprature: 1\nmessages: [{role: user, content: hi}]\n", "unknown key(s) 'temprature'"),
        ("x.yaml", "name: x\nmessages: [{role: robot, content: hi}]\n", "role' must be one of"),
        ("x.yaml", "name: x\nmessages: []\n", "non-empty list"),
        ("x.yaml", "name: x\ntemperature: 3\nmessages: [{role: user, content: hi}]\n", "between 0 and 2"),
        ("x.yaml", "name: x\nmax_tokens: 0\nmessages: [{role: user, content: hi}]\n", "positive integer"),
        ("x.yaml", "name: x\nvariables: {q: {type: text}}\nmessages: [{role: user, content: hi}]\n", "type' must be"),
        ("x.yaml", "name: x\nmessages: [{role: user, content: '{{ who }}'}]\n", "'who' that are not declared"),
        ("x.md", "name: x\n", "starts with YAML front matter"),
        ("x.md", "---\nname: x\n---\nintro\n## user\nhi\n", "line 4: text before the first"),
        ("x.txt", "name: x\n", "not a prompt file"),
    ],
)
def test_invalid_files_name_the_file_and_the_problem(path: str, text: str, message: str) -> None:
    with pytest.raises(PromptFileError) as caught:
        parse_prompt_file(path, text)
    assert caught.value.message.startswith(path)
    assert message in caught.value.message


def test_template_syntax_errors_give_the_file_line() -> None:
    text = "name: x\nvariables: {q: string}\nmessages:\n  - role: system\n    content: |\n      ok\n      {{ q }\n"
    with pytest.raises(PromptFileError, match=r"x.yaml line 7: messages\[0\].content line 2: template syntax error"):
        parse_prompt_file("x.yaml", text)
    md = "---\nname: x\nvariables: {q: string}\n---\n\n## system\nfine\n\n## user\n\n{% if q %}\n"
    with pytest.raises(PromptFileError, match=r"x.md line 11: messages\[1\].content line 1"):
        parse_prompt_file("x.md", md)


def test_unsafe_templates_are_refused_at_push_time() -> None:
    text = "name: x\nmessages:\n  - role: user\n    content: \"{{ ''.__class__ }}\"\n"
    with pytest.raises(PromptFileError, match="'__class__' is not allowed"):
        parse_prompt_file("x.yaml", text)


def test_test_files() -> None:
    listed = parse_test_file("a.tests.yaml", "- name: one\n  variables: {q: hi}\n")
    assert listed.stem == "a" and listed.cases == [{"name": "one", "variables": {"q": "hi"}}]
    wrapped = parse_test_file("a.tests.yml", "cases:\n  - {name: two}\n")
    assert wrapped.cases == [{"name": "two"}]
    assert parse_test_file("a.tests.yaml", "").cases == []
    with pytest.raises(PromptFileError, match="case 1 must be a mapping"):
        parse_test_file("a.tests.yaml", "- 3\n")
    with pytest.raises(PromptFileError, match="a YAML list of cases"):
        parse_test_file("a.tests.yaml", "name: x\n")


def test_discover_and_file_names(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\n")
    (tmp_path / "a.tests.yaml").write_text("[]\n")
    (tmp_path / "b.md").write_text("---\nname: b\n---\nhi\n")
    (tmp_path / "README.md").write_text("# not a prompt\n")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.yaml").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("name: c\n")
    assert [p.name for p in discover(tmp_path)] == ["a.tests.yaml", "a.yaml", "b.md"]
    assert file_name("a", "yml") == "a.yml" and file_name("a", None) == "a.yaml"
