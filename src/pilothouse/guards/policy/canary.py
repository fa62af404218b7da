"""The system-prompt canary of one call: planted in what the model is sent, never shown to anyone else.

When an output rule of the call's policies uses the `system_prompt_leak` scanner, the input guard stage plants
a random canary (`guards/leakage.py: plant_canary`) in the call's first system (or developer) message, in a
copy of the messages that only the upstream request carries: the caller's body, the cache key and the stored
trace keep the original. The output guard passes the canary to the scanner, so an answer that repeats it is a
leak the rule acts on, and strips it from whatever it releases, whatever the rule's action (a flag or shadow
rule records the leak; the caller still never gets the token). The trace is stripped of it too, before it is
stored (an `llm` span's output is recorded before the output guard runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pilothouse.guards.leakage import find_canary, plant_canary
from pilothouse.tracing.model import TraceRecord

SCANNER = "system_prompt_leak"
MASK = "[canary removed]"
"""What replaces a canary (verbatim or disguised) in released text and in stored traces."""

_SYSTEM_ROLES = ("system", "developer")


def plant(messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], str] | None:
    """A copy of `messages` with a canary in the first system message's text (the originals are untouched)
    and the canary; None when the call has no system message with text to protect."""
    for i, message in enumerate(messages):
        if message.get("role") not in _SYSTEM_ROLES:
            continue
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            planted, canary = plant_canary(content)
            new_content: Any = planted
        elif isinstance(content, list):
            texts = [j for j, p in enumerate(content) if isinstance(p, dict) and isinstance(p.get("text"), str)]
            if not texts:
                continue
            last = texts[-1]
            planted, canary = plant_canary(content[last]["text"])
            new_content = [dict(p, text=planted) if j == last else p for j, p in enumerate(content)]
        else:
            continue
        copy = list(messages)
        copy[i] = {**message, "content": new_content}
        return copy, canary
    return None


def spans(text: str, canary: str) -> list[tuple[int, int]]:
    """Where the canary (verbatim, disguised or reversed) is in `text`."""
    return [(start, end) for start, end, _ in find_canary(text, canary)]


def strip(text: str, canary: str) -> str:
    """`text` with every form of the canary replaced by `MASK`."""
    found = sorted(spans(text, canary))
    if not found:
        return text
    out, last = [], 0
    for start, end in found:
        if start < last:  # overlapping forms: already masked
            continue
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def strip_value(value: Any, canary: str) -> Any:
    """`value` (JSON-like) with the canary stripped from every string."""
    if isinstance(value, str):
        return strip(value, canary)
    if isinstance(value, dict):
        return {k: strip_value(v, canary) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strip_value(v, canary) for v in value]
    return value


def strip_trace(trace: TraceRecord, canary: str) -> None:
    """Remove the canary from the content of every span of `trace` (in place)."""
    for span in trace.spans:
        if span.input is not None:
            span.input = strip_value(span.input, canary)
        if span.output is not None:
            span.output = strip_value(span.output, canary)
