"""`pilothouse traces explain ID`: why a trace answered as it did, as one page (or `--json`).

Sections in reading order: the trace, the prompt and its version with the rendered messages, the model and its
parameters, the answer, the retrieved chunks, guard decisions, tool calls, the path of spans as a tree with
timings and cost, then scores and feedback. Content is shown as stored (redacted by the guard policies, absent
when capture is off or retention purged it). Registered on the `traces` command group.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.rule import Rule
from rich.text import Text
from rich.tree import Tree

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table, when
from pilothouse.cli.traces import traces_app

TEXT_LIMIT = 2_000
"""Characters of one message, chunk or tool payload shown on the page (`--json` has everything)."""


def _short(value: Any, limit: int = TEXT_LIMIT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _section(title: str) -> None:
    console.print(Rule(Text(title, style="bold"), align="left"))


def _line(label: str, value: Any) -> None:
    console.print(Text.assemble((f"{label}: ", "bold"), "-" if value is None else str(value)))


def _message(message: Any) -> Text:
    if not isinstance(message, dict):
        return Text(_short(message))
    content = message.get("content")
    if content is None and message.get("tool_calls"):
        content = {"tool_calls": message["tool_calls"]}
    return Text.assemble((f"[{message.get('role', '?')}] ", "cyan"), _short(content if content is not None else ""))


def _overview(doc: dict[str, Any]) -> None:
    t, cost = doc["trace"], doc["cost"]
    console.print(Rule(Text(f"trace {t['id']}", style="bold")))
    facts = [
        f"status {t['status']}",
        f"source {t['source'] or '-'}",
        f"model {t['model'] or '-'}",
        f"{t['latency_ms']} ms",
        f"${t['cost_usd']}",
        f"tokens {t['input_tokens']}→{t['output_tokens']}",
    ]
    console.print(Text("  ·  ".join(facts)))
    extra = {"session": t["session_id"], "user": t["user_id"], "tags": ", ".join(t["tags"]) or None}
    console.print(
        Text("  ·  ".join([f"started {when(t['started_at'])} UTC", *(f"{k} {v}" for k, v in extra.items() if v)]))
    )
    if cost["by_kind"]:
        console.print(Text("cost by span kind: " + ", ".join(f"{k} ${v}" for k, v in cost["by_kind"].items())))
    if t.get("content_purged_at"):
        console.print(Text(f"content purged by retention at {when(t['content_purged_at'])} UTC", style="yellow"))


def _prompt_and_model(doc: dict[str, Any]) -> None:
    prompt, model = doc["prompt"], doc["model"]
    _section("Prompt")
    if prompt["name"]:
        label = f" (label {prompt['label']})" if prompt["label"] else ""
        _line("prompt", f"{prompt['name']} version {prompt['version']}{label}")
        _line("content hash", prompt["content_hash"])
        if prompt["variables"] is not None:
            _line("variables", _short(prompt["variables"]))
    else:
        console.print("no managed prompt: the caller sent the messages")
    if prompt["messages"] is None:
        console.print(Text("rendered messages not stored (content capture off, or purged)", style="dim"))
    for message in prompt["messages"] or []:
        console.print(_message(message))
    _section("Model")
    if model is None:
        console.print("no model call (refused before it, answered from the cache, or not an llm trace)")
    else:
        via = f"{model['provider']}" + (f" ({model['deployment']})" if model["deployment"] else "")
        _line("model", f"{model['model']} via {via}")
        if model["response_model"]:
            _line("response model", model["response_model"])
        params = ", ".join(f"{k}={_short(v, 200)}" for k, v in sorted(model["parameters"].items()))
        _line("parameters", params or None)
        finish = model["finish_reasons"]
        _line("finish", ", ".join(finish) if isinstance(finish, list) else finish)
        _line("attempts", model["attempts"])
    if doc["answer"] is not None:
        _section("Answer")
        console.print(_message(doc["answer"]))


def _context_guards_tools(doc: dict[str, Any]) -> None:
    for r in doc["retrieval"]:
        _section(f"Retrieved context: {r['name']} ({len(r['chunks'])} chunks, {r['latency_ms']} ms)")
        _line("query", r["query"])
        if r["data_source"]:
            _line("data source", r["data_source"])
        rows = [[i + 1, c["score"], c["source"], c["id"], _short(c["text"], 300)] for i, c in enumerate(r["chunks"])]
        table("chunks", ["#", "score", "source", "id", "text"], rows)
    if doc["guards"]:
        _section("Guard decisions")
        rows = []
        for g in doc["guards"]:
            policy = f"{g['policy']} v{g['policy_version']}" if g.get("policy") else g.get("tool") or "-"
            score = f"{g['score']} / {g['threshold']}" if g.get("score") is not None else "-"
            why = g.get("error") or g.get("code") or g.get("refused_by") or ", ".join(g.get("kinds") or []) or "-"
            decision = g.get("decision") or "-"
            shown = f"{decision} (would {g['would']})" if g.get("would") else decision
            rows.append([g["name"], policy, g.get("direction") or g.get("stage"), shown, score, why, g["latency_ms"]])
        table("guards", ["guard", "policy / tool", "where", "decision", "score / threshold", "why", "ms"], rows)
    if doc["tools"]:
        _section("Tool calls")
        rows = [
            [
                t["name"],
                t["call_id"],
                _short(t["arguments"], 300),
                _short(t["result"], 300) if t["result"] is not None else "-",
                t["status"] or ("requested" if t["requested_by"] else "-"),
                t["latency_ms"],
            ]
            for t in doc["tools"]
        ]
        table("tools", ["tool", "call id", "arguments", "result", "status", "ms"], rows)


def _path(doc: dict[str, Any]) -> None:
    _section("Path")
    root = Tree(Text(f"trace {doc['trace']['id']}"))
    nodes: dict[str, Tree] = {}
    for step in doc["path"]:
        parent = nodes.get(step["parent_id"] or "", root)
        parts = [
            f"+{step['start_ms']} ms",
            f"{step['latency_ms']} ms",
            step["status"],
        ]
        if step["input_tokens"] is not None:
            parts.append(f"tokens {step['input_tokens']}→{step['output_tokens']}")
        if step["cost_usd"] is not None:
            parts.append(f"${step['cost_usd']}")
        label = Text.assemble((f"{step['kind']} ", "cyan"), (step["name"], "bold"), "  " + "  ".join(parts))
        if step["error"]:
            label.append(f"  {step['error']}", style="red")
        nodes[step["span_id"]] = parent.add(label)
    console.print(root)


def _scores(doc: dict[str, Any]) -> None:
    _section("Scores")
    rows = []
    for s in doc["scores"]:
        value = s["string_value"] if s["value"] is None else s["value"]
        if s.get("data_type") == "boolean":
            value = "true" if s["value"] else "false"
        target = f"span {s['span_name'] or s['span_id']}" if s["span_id"] else "trace"
        rows.append([s["name"], value, s.get("data_type"), s["source"], target, s["comment"], when(s["created_at"])])
    if rows:
        table("scores", ["name", "value", "type", "source", "on", "comment", "created (UTC)"], rows)
    else:
        console.print("no scores")
    _section("Feedback")
    if not doc["feedback"]:
        console.print("no feedback")
    for f in doc["feedback"]:
        who = f" from {f['user_id']}" if f["user_id"] else ""
        comment = f": {f['comment']}" if f["comment"] else ""
        console.print(Text(f"thumbs {f['thumbs']}{who} at {when(f['created_at'])} UTC{comment}"))


def render(doc: dict[str, Any]) -> None:
    """The whole page, section by section."""
    _overview(doc)
    _prompt_and_model(doc)
    _context_guards_tools(doc)
    _path(doc)
    _scores(doc)


@traces_app.command("explain")
def explain(
    trace_id: Annotated[str, typer.Argument(help="Trace id (the x-pilothouse-trace-id response header).")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Why a trace answered as it did: prompt and version, model and parameters, retrieved chunks, guard
    decisions, tool calls, the path of spans with cost and latency, scores and feedback."""
    with client(url, api_key) as ph:
        doc = ph.explain_trace(trace_id)
    emit(as_json, doc, lambda: render(doc))
