"""Token estimates for when neither a tokenizer nor the provider gives a count.

We never depend on tiktoken (it downloads encodings at first use). The estimate is the common rule of
thumb of about four characters per token plus a per-message overhead; spans mark such counts estimated.
"""

from __future__ import annotations

import math
from typing import Any

MESSAGE_OVERHEAD = 4


def estimate_text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        parts = [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    else:
        parts = []
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():  # shapes are checked in validation; estimates never fail
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            parts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
    return " ".join(parts)


def estimate_messages_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(estimate_text_tokens(message_text(m)) + MESSAGE_OVERHEAD for m in messages if isinstance(m, dict)) + 2
