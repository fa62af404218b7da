"""Dataset items made from production traces (`pilothouse dataset add-from-traces`).

Each trace becomes one item: `input` is the prompt's variables when the call rendered a registered prompt, else
the chat messages of its first model call; `expected` is the answer the trace gave (a starting point for a
person to review: production answers are not references until someone checks them, so the item's metadata says
`expected_from: trace`); `context` is the text of the chunks its retrieval spans returned; `metadata` names the
trace, model and prompt version. Traces whose content was not kept (capture off, or purged by retention) and
traces without a model call are skipped and counted by reason, never turned into empty items.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from pilothouse.store.traces import TraceFilter, list_traces
from pilothouse.tracing.explain import explain_trace

__all__ = ["FromTraces", "item_from_explanation", "items_from_traces"]

MAX_TRACES = 10_000


@dataclass
class FromTraces:
    items: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    """Reason -> traces left out: `content not kept`, `no model call`, `no answer`."""


def _message_text(message: Any) -> str | None:
    if isinstance(message, dict):
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = [str(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
            return "".join(parts) if parts else None
    return message if isinstance(message, str) else None


def _messages(raw: list[Any]) -> list[dict[str, str]] | None:
    out: list[dict[str, str]] = []
    for m in raw:
        text = _message_text(m)
        if not isinstance(m, dict) or text is None or m.get("role") not in ("system", "user", "assistant", "tool"):
            return None
        out.append({"role": str(m["role"]), "content": text})
    return out or None


def item_from_explanation(found: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(item, None), or (None, the reason it cannot be one)."""
    trace = found["trace"]
    if trace.get("content_purged_at") is not None:
        return None, "content not kept"
    if found["model"] is None:
        return None, "no model call"
    prompt = found["prompt"]
    variables = prompt.get("variables")
    messages = _messages(prompt.get("messages") or [])
    if isinstance(variables, dict) and variables and all(isinstance(k, str) for k in variables):
        value: Any = variables
    elif messages:
        value = messages
    else:
        return None, "content not kept"
    answer = _message_text(found["answer"])
    if answer is None:
        return None, "no answer"
    chunks = [c["text"] for r in found["retrieval"] for c in r["chunks"] if isinstance(c.get("text"), str)]
    metadata: dict[str, Any] = {"trace_id": trace["id"], "model": trace["model"], "expected_from": "trace"}
    if prompt.get("name"):
        metadata["prompt"] = prompt["name"]
        metadata["prompt_version"] = prompt.get("version")
    item: dict[str, Any] = {"id": f"trace-{trace['id']}", "input": value, "expected": answer, "metadata": metadata}
    if chunks:
        item["context"] = chunks
    return item, None


def items_from_traces(conn: Connection, flt: TraceFilter, *, limit: int) -> FromTraces:
    """Items from the newest `limit` traces that match `flt` (at most MAX_TRACES)."""
    out = FromTraces()
    cursor: str | None = None
    wanted = min(limit, MAX_TRACES)
    seen = 0
    while seen < wanted:
        page, cursor = list_traces(conn, flt, limit=min(200, wanted - seen), cursor=cursor)
        for row in page:
            seen += 1
            found = explain_trace(conn, flt.project_id, row["id"])
            if found is None:  # purged between the list and the read
                out.skipped["content not kept"] += 1
                continue
            item, reason = item_from_explanation(found)
            if item is None:
                out.skipped[reason or "content not kept"] += 1
            else:
                out.items.append(item)
        if cursor is None:
            break
    return out
