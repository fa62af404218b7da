"""`pilothouse traces tail [-f]`: the newest traces, one line each, and with `-f` every new one as it is
stored (polling the API, `tail -f` style) until Ctrl-C. Registered on the `traces` command group."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.text import Text

from pilothouse.cli.common import KeyOpt, UrlOpt, client, console, when
from pilothouse.cli.traces import traces_app

FILTER_KEYS = (
    "model",
    "status",
    "user",
    "session",
    "source",
    "prompt",
    "prompt_version",
    "tag",
    "cost_min",
    "cost_max",
    "latency_min_ms",
    "latency_max_ms",
    "score",
    "q",
)
"""What `--filter KEY=VALUE` may name: the filters of `GET /api/traces` (and `traces list`)."""


def parse_filters(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs into list filters; a bad pair is a usage error naming the keys accepted."""
    filters: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in FILTER_KEYS or not value:
            raise typer.BadParameter(f"expected KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}, got {item!r}")
        filters[key] = value
    return filters


def line(trace: dict[str, Any]) -> Text:
    """One trace on one line: start, id, source, model, status, tokens, cost, latency and name."""
    status_style = "green" if trace["status"] == "ok" else "red"
    latency = "-" if trace["latency_ms"] is None else f"{trace['latency_ms']} ms"
    return Text.assemble(
        f"{when(trace['started_at'])}  {trace['id']}  {trace.get('source') or '-':<11} {trace['model'] or '-'}  ",
        (trace["status"], status_style),
        f"  {trace['input_tokens']}→{trace['output_tokens']}  ${trace['cost_usd']}  {latency}  {trace['name']}",
    )


@traces_app.command("tail")
def tail(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new traces until Ctrl-C.")] = False,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", help=f"KEY=VALUE, repeatable; KEY: {', '.join(FILTER_KEYS)}.", show_default=False),
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, max=500, help="How many recent traces first.")] = 10,
    interval: Annotated[float, typer.Option(min=0.1, max=3600, help="Seconds between polls with -f.")] = 1.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per trace and line (for scripts).")] = False,
) -> None:
    """The newest traces, oldest first, one line each; `-f` follows new ones as they are stored."""
    wanted = parse_filters(filters or [])
    with client(url, api_key) as ph:
        try:
            for trace in ph.tail_traces(follow=follow, last=lines, interval_s=interval, filters=wanted):
                if as_json:
                    console.file.write(orjson.dumps(trace).decode() + "\n")
                    console.file.flush()
                else:
                    console.print(line(trace), highlight=False)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
