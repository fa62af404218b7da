"""Cache keys: what makes two requests the same question."""

from __future__ import annotations

from typing import Any

from pilothouse.gateway.cache.keys import context_hash, exact_key, is_sampled, last_user_text

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
]


def key(messages: list[dict[str, Any]] = MESSAGES, model: str = "m", **params: Any) -> str:
    return exact_key(model, messages, params)


def test_key_is_a_sha256_hex() -> None:
    k = key(temperature=0)
    assert len(k) == 64 and int(k, 16) >= 0


def test_order_of_dict_keys_does_not_matter() -> None:
    reordered_messages = [{"content": m["content"], "role": m["role"]} for m in MESSAGES]
    reordered_tools = [
        {
            "function": {"parameters": {"properties": {"a": {"type": "string"}}, "type": "object"}, "name": "f"},
            "type": "function",
        }
    ]
    a = exact_key("m", MESSAGES, {"temperature": 0, "max_tokens": 5, "tools": TOOLS})
    b = exact_key("m", reordered_messages, {"tools": reordered_tools, "max_tokens": 5, "temperature": 0})
    assert a == b


def test_integral_floats_equal_ints() -> None:
    assert key(temperature=0) == key(temperature=0.0)
    assert key(top_p=1) == key(top_p=1.0)


def test_what_changes_the_answer_changes_the_key() -> None:
    base = key(temperature=0)
    assert key(temperature=0.7) != base
    assert key(model="other", temperature=0) != base
    assert key(temperature=0, max_tokens=10) != base
    assert key(temperature=0, seed=1) != base
    assert key(temperature=0, tools=TOOLS) != base
    assert key(temperature=0, response_format={"type": "json_object"}) != base
    assert key(temperature=0, stop=["\n"]) != base
    assert key([{"role": "user", "content": "Hi"}], temperature=0) != base  # no system prompt
    assert key([*MESSAGES[:1], {"role": "user", "content": "Hi!"}], temperature=0) != base


def test_what_does_not_change_the_answer_is_left_out() -> None:
    base = key(temperature=0)
    assert key(temperature=0, user="alice") == base
    assert key(temperature=0, stream=True, stream_options={"include_usage": True}) == base
    assert key(temperature=0, metadata={"team": "x"}) == base


def test_context_hash_ignores_only_the_last_message_content() -> None:
    def ctx(messages: list[dict[str, Any]], **params: Any) -> str:
        return context_hash("m", messages, params)

    base = ctx(MESSAGES, temperature=0)
    assert ctx([MESSAGES[0], {"role": "user", "content": "Hello"}], temperature=0) == base
    assert ctx([{"role": "system", "content": "Be long."}, MESSAGES[1]], temperature=0) != base
    assert ctx(MESSAGES, temperature=0.5) != base
    earlier = [MESSAGES[0], {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, MESSAGES[1]]
    assert ctx(earlier, temperature=0) != base
    assert context_hash("other", MESSAGES, {"temperature": 0}) != base


def test_last_user_text() -> None:
    assert last_user_text(MESSAGES) == "Hi"
    parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert last_user_text(parts) == "a\nb"
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    assert last_user_text(image) is None
    assert last_user_text([*MESSAGES, {"role": "assistant", "content": "Hello"}]) is None


def test_sampled_unless_temperature_zero() -> None:
    assert is_sampled({}) is True  # OpenAI's default temperature is 1
    assert is_sampled({"temperature": 0.2}) is True
    assert is_sampled({"temperature": 0}) is False
