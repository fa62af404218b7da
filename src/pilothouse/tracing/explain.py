"""Why did it answer this way: one trace gathered into the sections an operator reads, from what is stored.

`explain_trace` returns a JSON-ready dict (`GET /api/traces/{id}/explain`, `pilothouse traces explain ID`):

- `trace`: the trace's summary (status, source, model, session, user, tags, tokens, cost, latency).
- `prompt`: the managed prompt (name, version, label, content hash, variables) when the call named one, and the
  rendered messages the model was sent (as stored: redacted per the guard policies, absent when content capture
  is off or retention purged it).
- `model`: model, provider, deployment, request parameters (`gen_ai.request.*`), response model, finish reasons,
  attempts; `answer`: the final answer's message.
- `retrieval`: per `retrieval` span, the query and the chunks with id, source, score and text.
- `guards`: per `guard` span (policy rules, the tool gate, admission refusals), its decision and why.
- `tools`: the tool calls the model asked for and the `tool` spans that ran, with arguments and results.
- `path`: every span in tree order (depth-first, children by start), with depth, offset from the trace's start,
  latency, tokens, cost and status: the path through a workflow and the cost and latency of each step.
- `scores` and `feedback`: what was attached to the trace and its spans.

Span attributes read (OpenTelemetry GenAI names where they exist; docs/explain.md lists them for instrumenters):
retrieval `gen_ai.retrieval.query.text`, `gen_ai.data_source.id`, `gen_ai.retrieval.documents` (a list, or
its JSON text, of `{id, score, source?, text?}`); tool `gen_ai.tool.name`, `gen_ai.tool.call.id`,
`gen_ai.tool.call.arguments`, `gen_ai.tool.call.result` (else the span's input and output); guard
`pilothouse.guard.*` (guards/policy/spans.py) and `pilothouse.tool.*` (gateway/stages/tool_gate.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from pilothouse.store.feedback import trace_feedback
from pilothouse.store.scores import list_scores
from pilothouse.store.traces import get_trace

_PARAMS = "gen_ai.request."
_NOT_PARAMS = frozenset({"gen_ai.request.model"})
_GUARD_FIELDS = {
    "pilothouse.guard.policy": "policy",
    "pilothouse.guard.policy_version": "policy_version",
    "pilothouse.guard.direction": "direction",
    "pilothouse.guard.rule": "rule",
    "pilothouse.guard.scanner": "scanner",
    "pilothouse.guard.decision": "decision",
    "pilothouse.guard.action": "action",
    "pilothouse.guard.would": "would",
    "pilothouse.guard.score": "score",
    "pilothouse.guard.threshold": "threshold",
    "pilothouse.guard.kinds": "kinds",
    "pilothouse.tool.name": "tool",
    "pilothouse.tool.code": "code",
    "pilothouse.tool.risk": "risk",
    "pilothouse.tool.rule": "tool_rule",
    "pilothouse.tool.stage": "stage",
    "pilothouse.limits.refused_by": "refused_by",
}
MAX_SCORES = 1000
"""Scores listed per trace (the newest)."""


def explain_trace(conn: Connection, project_id: str, trace_id: str) -> dict[str, Any] | None:
    """The explanation of one trace of the project, or None when the project has no such trace."""
    trace = get_trace(conn, project_id, trace_id)
    if trace is None:
        return None
    spans: list[dict[str, Any]] = trace.pop("spans")
    scores, _ = list_scores(conn, project_id, trace_id=trace_id, limit=MAX_SCORES)
    feedback = trace_feedback(conn, project_id, trace_id)
    names = {s["id"]: s["name"] for s in spans}
    llm = [s for s in spans if s["kind"] == "llm"]
    return {
        "trace": trace,
        "prompt": _prompt(trace, llm),
        "model": _model(llm),
        "answer": _answer(spans),
        "retrieval": [_retrieval(s) for s in spans if s["kind"] == "retrieval"],
        "guards": [_guard(s) for s in spans if s["kind"] == "guard"],
        "tools": _tools(spans),
        "path": path(spans, trace["started_at"]),
        "cost": _cost(trace, spans),
        "scores": [{**s.to_dict(), "span_name": names.get(s.span_id or "")} for s in reversed(scores)],
        "feedback": [f.to_dict() for f in feedback],
    }


def path(spans: list[dict[str, Any]], started_at: float) -> list[dict[str, Any]]:
    """Spans depth-first in tree order (children by start time); a span whose parent is not in the trace is a
    root. Each with its depth and its start as an offset from the trace's start."""
    ids = {s["id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        children[s["parent_id"] if s["parent_id"] in ids else None].append(s)
    for group in children.values():
        group.sort(key=lambda s: (s["started_at"], s["id"]))
    out: list[dict[str, Any]] = []
    stack = [(s, 0) for s in reversed(children[None])]
    while stack:
        span, depth = stack.pop()
        out.append(
            {
                "span_id": span["id"],
                "parent_id": span["parent_id"],
                "depth": depth,
                "kind": span["kind"],
                "name": span["name"],
                "status": span["status"],
                "error": span["error"],
                "start_ms": round((span["started_at"] - started_at) * 1000.0, 3),
                "latency_ms": span["latency_ms"],
                "model": span["model"],
                "input_tokens": span["input_tokens"],
                "output_tokens": span["output_tokens"],
                "cost_usd": span["cost_usd"],
            }
        )
        stack.extend((c, depth + 1) for c in reversed(children.get(span["id"], [])))
    return out


def _messages(span: dict[str, Any] | None) -> list[Any] | None:
    data = span["input"] if span else None
    messages = data.get("messages") if isinstance(data, dict) else None
    return messages if isinstance(messages, list) else None


def _prompt(trace: dict[str, Any], llm: list[dict[str, Any]]) -> dict[str, Any]:
    first = llm[0] if llm else None
    attrs = first["attributes"] if first else {}
    data = first["input"] if first else None
    return {
        "name": trace["prompt_name"] or attrs.get("gen_ai.prompt.name"),
        "version": trace["prompt_version"] or attrs.get("pilothouse.prompt.version"),
        "label": attrs.get("pilothouse.prompt.label"),
        "content_hash": attrs.get("pilothouse.prompt.content_hash"),
        "variables": data.get("variables") if isinstance(data, dict) else None,
        "messages": _messages(first),
    }


def _model(llm: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not llm:
        return None
    final = next((s for s in reversed(llm) if s["status"] == "ok"), llm[-1])
    attrs = final["attributes"]
    return {
        "span_id": final["id"],
        "model": final["model"],
        "provider": final["provider"],
        "deployment": attrs.get("pilothouse.deployment.model"),
        "response_model": attrs.get("gen_ai.response.model"),
        "parameters": {
            k[len(_PARAMS) :]: v for k, v in attrs.items() if k.startswith(_PARAMS) and k not in _NOT_PARAMS
        },
        "finish_reasons": attrs.get("gen_ai.response.finish_reasons"),
        "attempts": len(llm),
        "input_tokens": final["input_tokens"],
        "output_tokens": final["output_tokens"],
        "usage_estimated": final["usage_estimated"],
    }


def _answer(spans: list[dict[str, Any]]) -> Any:
    """The message of the last llm (or cache hit) span that has one."""
    for span in reversed(sorted(spans, key=lambda s: s["ended_at"] or s["started_at"])):
        out = span["output"]
        if span["kind"] in ("llm", "cache") and isinstance(out, dict) and out.get("message") is not None:
            return out["message"]
    return None


def _json(value: Any) -> Any:
    """Attributes that arrived over OTLP hold lists and objects as JSON text."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _retrieval(span: dict[str, Any]) -> dict[str, Any]:
    attrs = span["attributes"]
    docs = _json(attrs.get("gen_ai.retrieval.documents"))
    chunks = [
        {"id": d.get("id"), "source": d.get("source"), "score": d.get("score"), "text": d.get("text")}
        for d in (docs if isinstance(docs, list) else [])
        if isinstance(d, dict)
    ]
    return {
        "span_id": span["id"],
        "name": span["name"],
        "query": attrs.get("gen_ai.retrieval.query.text"),
        "data_source": attrs.get("gen_ai.data_source.id"),
        "chunks": chunks,
        "latency_ms": span["latency_ms"],
        "status": span["status"],
    }


def _guard(span: dict[str, Any]) -> dict[str, Any]:
    attrs = span["attributes"]
    found = {field: attrs[key] for key, field in _GUARD_FIELDS.items() if key in attrs}
    if "decision" not in found and span["name"] == "admission":
        found["decision"] = "block"
    rules = _json(attrs.get("pilothouse.guard.rules"))
    if isinstance(rules, list):  # one span per direction holds every rule's decision (guards/policy/spans.py)
        found["rules"] = [r for r in rules if isinstance(r, dict)]
    return {
        "span_id": span["id"],
        "name": span["name"],
        **found,
        "status": span["status"],
        "error": span["error"],
        "latency_ms": span["latency_ms"],
    }


def _tools(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool spans that ran, then the calls the model asked for that no tool span records, each with the result
    the application sent back in a later request (a `tool` message with the call's id), where stored."""
    results: dict[str, Any] = {}
    for span in spans:
        for message in _messages(span) or []:
            if isinstance(message, dict) and message.get("role") == "tool" and message.get("tool_call_id"):
                results[message["tool_call_id"]] = message.get("content")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for span in spans:
        if span["kind"] != "tool":
            continue
        attrs = span["attributes"]
        call_id = attrs.get("gen_ai.tool.call.id")
        if call_id:
            seen.add(call_id)
        result = attrs.get("gen_ai.tool.call.result", span["output"])
        out.append(
            {
                "span_id": span["id"],
                "name": attrs.get("gen_ai.tool.name") or span["name"],
                "call_id": call_id,
                "arguments": _json(attrs.get("gen_ai.tool.call.arguments", span["input"])),
                "result": _json(result) if result is not None else results.get(call_id or ""),
                "status": span["status"],
                "error": span["error"],
                "latency_ms": span["latency_ms"],
                "requested_by": None,
            }
        )
    for span in spans:
        message = span["output"].get("message") if isinstance(span["output"], dict) else None
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or call.get("id") in seen:
                continue
            out.append(
                {
                    "span_id": None,
                    "name": function.get("name"),
                    "call_id": call.get("id"),
                    "arguments": _json(function.get("arguments")),
                    "result": results.get(call.get("id") or ""),
                    "status": None,
                    "error": None,
                    "latency_ms": None,
                    "requested_by": span["id"],
                }
            )
    return out


def _cost(trace: dict[str, Any], spans: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    for span in spans:
        if span["cost_usd"] is not None:
            by_kind[span["kind"]] += Decimal(span["cost_usd"])
    return {
        "total_usd": trace["cost_usd"],
        "by_kind": {kind: format(total, "f") for kind, total in sorted(by_kind.items())},
        "input_tokens": trace["input_tokens"],
        "output_tokens": trace["output_tokens"],
        "latency_ms": trace["latency_ms"],
    }
