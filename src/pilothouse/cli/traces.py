"""`pilothouse traces`: list and inspect traces of calls through the gateway."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.tree import Tree

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table, when

traces_app = typer.Typer(help="List and show traces (every gateway call is one).", no_args_is_help=True)


@traces_app.command("list")
def list_(
    since: Annotated[str | None, typer.Option(help="Start time: epoch seconds or ISO 8601.")] = None,
    until: Annotated[str | None, typer.Option(help="End time: epoch seconds or ISO 8601.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    status: Annotated[str | None, typer.Option(help="ok or error.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this end user (the request's `user`).")] = None,
    session: Annotated[
        str | None, typer.Option(help="Only this session (x-pilothouse-session-id; prompt-test-... for a test run).")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Only calls from this source: http, prompt_test, eval, flow or sdk.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Page size.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List traces, newest first."""
    with client(url, api_key) as ph:
        page = ph.list_traces(
            since=since,
            until=until,
            model=model,
            status=status,
            user=user,
            session=session,
            source=source,
            limit=limit,
            cursor=cursor,
        )
    rows = page["data"]

    def render() -> None:
        table(
            "Traces",
            ["id", "started (UTC)", "source", "model", "status", "in", "out", "cost USD", "ms"],
            [
                [
                    t["id"],
                    when(t["started_at"]),
                    t.get("source") or "",
                    t["model"],
                    t["status"],
                    t["input_tokens"],
                    t["output_tokens"],
                    t["cost_usd"],
                    t["latency_ms"],
                ]
                for t in rows
            ],
        )
        if page["next_cursor"]:
            console.print(f"more: --cursor {page['next_cursor']}")

    emit(as_json, page, render)


@traces_app.command("show")
def show(
    trace_id: Annotated[str, typer.Argument(help="Trace id (the x-pilothouse-trace-id response header).")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one trace with its spans: model, tokens, cost, latency, status and content."""
    with client(url, api_key) as ph:
        trace = ph.get_trace(trace_id)

    def render() -> None:
        root = Tree(
            f"[bold]trace {trace['id']}[/bold]  {trace['status']}  {trace['latency_ms']} ms  "
            f"${trace['cost_usd']}  tokens {trace['input_tokens']}→{trace['output_tokens']}"
        )
        nodes = {None: root}
        for span in trace["spans"]:
            parent = nodes.get(span["parent_id"], root)
            est = " (estimated)" if span["usage_estimated"] else ""
            line = (
                f"{span['kind']} [bold]{span['name']}[/bold]  {span['status']}  {span['latency_ms']} ms"
                + (f"  ttft {span['ttft_ms']} ms" if span["ttft_ms"] is not None else "")
                + (
                    f"  tokens {span['input_tokens']}→{span['output_tokens']}{est}"
                    if span["input_tokens"] is not None
                    else ""
                )
                + (f"  ${span['cost_usd']}" if span["cost_usd"] is not None else "")
            )
            node = parent.add(line)
            if span["error"]:
                node.add(f"[red]{span['error']}[/red]")
            out = span.get("output") or {}
            message = out.get("message") if isinstance(out, dict) else None
            if message and message.get("content"):
                node.add(f"output: {str(message['content'])[:300]}")
            nodes[span["id"]] = node
        console.print(root)
        console.print(f"started {when(trace['started_at'])} UTC")

    emit(as_json, trace, render)
