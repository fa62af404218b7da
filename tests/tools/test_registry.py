"""Tool definitions: the plain and the OpenAI shape, and refusals that name the tool and the field."""

from __future__ import annotations

import pytest

from pilothouse.tools.registry import ToolDefinitionError, load_tool_file, parse_tool, parse_tools

SCHEMA = {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}


def test_plain_and_openai_shapes_give_the_same_tool() -> None:
    plain = parse_tool({"name": "fetch_url", "risk": "medium", "description": "Fetch", "parameters": SCHEMA})
    shaped = parse_tool(
        {
            "type": "function",
            "risk": "medium",
            "function": {"name": "fetch_url", "description": "Fetch", "parameters": SCHEMA},
        }
    )
    assert plain == shaped
    assert plain.to_dict() == {"name": "fetch_url", "risk": "medium", "description": "Fetch", "parameters": SCHEMA}


def test_defaults_are_low_risk_and_any_object() -> None:
    tool = parse_tool({"name": "ping"})
    assert (tool.risk, tool.parameters) == ("low", {"type": "object"})


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"name": "has space"}, "'name' must be"),
        ({"name": "x" * 65}, "'name' must be"),
        ({"name": "t", "risk": "extreme"}, "'risk' must be one of low, medium, high"),
        ({"name": "t", "parameters": {"type": "string"}}, "must describe an object"),
        ({"name": "t", "parameters": {"type": "object", "properties": {"a": {"type": 5}}}}, "not a valid JSON Schema"),
        ({"name": "t", "parameters": []}, "must be a JSON Schema object"),
        ({"name": "t", "risk": "low", "colour": "red"}, "unknown field(s) colour"),
        ("just text", "a tool is a mapping"),
    ],
)
def test_a_bad_definition_is_refused_naming_what_is_wrong(raw: object, says: str) -> None:
    with pytest.raises(ToolDefinitionError, match=None) as caught:
        parse_tool(raw)
    assert says in str(caught.value)


def test_a_file_may_hold_one_tool_a_list_or_a_tools_key() -> None:
    assert [t.name for t in parse_tools({"name": "a"})] == ["a"]
    assert [t.name for t in parse_tools([{"name": "a"}, {"name": "b"}])] == ["a", "b"]
    assert [t.name for t in parse_tools({"tools": [{"name": "a"}]})] == ["a"]
    with pytest.raises(ToolDefinitionError, match="defined twice: a"):
        parse_tools([{"name": "a"}, {"name": "a"}])
    with pytest.raises(ToolDefinitionError, match="no tools"):
        parse_tools([])


def test_yaml_and_json_files() -> None:
    yaml_text = "tools:\n  - name: send_email\n    risk: high\n    parameters:\n      type: object\n"
    assert load_tool_file(yaml_text, "tools.yaml")[0].risk == "high"
    assert load_tool_file('{"name": "x"}', "tools.json")[0].name == "x"
    with pytest.raises(ToolDefinitionError, match="not valid JSON"):
        load_tool_file("{", "tools.json")
