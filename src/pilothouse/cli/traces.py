"""`pilothouse traces`: list and inspect traces of calls through the gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.tree import Tree

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table, when
from pilothouse.cli.credentials import root_options

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
    prompt: Annotated[str | None, typer.Option(help="Only calls of this prompt.")] = None,
    prompt_version: Annotated[int | None, typer.Option(help="Only this version of --prompt.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only traces with this tag.")] = None,
    cost_min: Annotated[str | None, typer.Option(help="Cost at least this (USD).")] = None,
    cost_max: Annotated[str | None, typer.Option(help="Cost at most this (USD).")] = None,
    latency_min: Annotated[float | None, typer.Option(help="Latency at least this (ms).")] = None,
    latency_max: Annotated[float | None, typer.Option(help="Latency at most this (ms).")] = None,
    score: Annotated[str | None, typer.Option(help="A score compared, e.g. 'groundedness<0.5'.")] = None,
    q: Annotated[str | None, typer.Option("--q", "--search", help="Words the kept content must contain.")] = None,
    order: Annotated[
        str | None, typer.Option(help="newest (default), cost (costliest first) or latency (slowest first).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Page size.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List traces, newest first, or costliest or slowest first with --order (filters: docs/traces-query.md)."""
    with client(url, api_key) as ph:
        page = ph.list_traces(
            since=since,
            until=until,
            model=model,
            status=status,
            user=user,
            session=session,
            source=source,
            prompt=prompt,
            prompt_version=prompt_version,
            tag=tag,
            cost_min=cost_min,
            cost_max=cost_max,
            latency_min_ms=latency_min,
            latency_max_ms=latency_max,
            score=score,
            q=q,
            order=order,
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


@traces_app.command("purge")
def purge(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Traces started before: a duration before now (30d, 12h, 2w) or a date (ISO 8601)."
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be deleted.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="pilothouse.toml to read (default: as `pilothouse up`).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", envvar="PILOTHOUSE_DATABASE_URL", help="The servers' database.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete the content (messages, outputs, span payloads) of old traces and keep their numbers (tokens, cost,
    latency, status, model, scores); audited. Runs on the database directly, like the servers' retention job
    (`traces.retention_days`)."""
    import getpass
    import time

    from pilothouse.audit.chain import recorder
    from pilothouse.config import ConfigError, load_settings
    from pilothouse.store.engine import StoreError, open_store
    from pilothouse.store.retention import purge_content
    from pilothouse.timewindow import parse_time

    now = time.time()
    try:
        older_than_s = now - parse_time(older_than, now=now)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] --older-than: {exc}")
        raise typer.Exit(2) from None
    if older_than_s <= 0:
        err_console.print(f"[red]error:[/red] --older-than: {older_than!r} is not in the past")
        raise typer.Exit(2)
    try:
        settings = load_settings(config or root_options().config, database_url=database_url)
        store = open_store(settings.resolved_database_url(), migrate=False)
    except (ConfigError, StoreError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    try:
        actor = f"cli:{getpass.getuser()}"
        result = purge_content(
            store,
            older_than_s=older_than_s,
            dry_run=dry_run,
            now=now,
            record=recorder(actor, "trace.content.purge"),
        )
    except Exception as exc:
        err_console.print(f"[red]error:[/red] cannot purge: {exc}")
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    verb = "would delete" if dry_run else "deleted"
    emit(
        as_json,
        result.to_dict(),
        lambda: console.print(
            f"{verb} the content of {result.traces} traces ({result.spans} spans) started before "
            f"{when(result.cutoff)} UTC; their numbers are kept"
        ),
    )
