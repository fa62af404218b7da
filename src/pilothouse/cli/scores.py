"""`pilothouse scores`: record feedback and evaluation scores on traces, and list them."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table, when

scores_app = typer.Typer(help="Add and list scores (feedback, evaluations) on traces.", no_args_is_help=True)


def _value(text: str) -> float | str:
    """A number is a numeric score; anything else a categorical one."""
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        raise typer.BadParameter(f"a numeric score must be finite, got {text!r}", param_hint="VALUE")
    return number


@scores_app.command("add")
def add(
    trace_id: Annotated[str, typer.Argument(help="Trace id (the x-pilothouse-trace-id response header).")],
    name: Annotated[str, typer.Argument(help="Score name, e.g. 'helpful'.")],
    value: Annotated[str, typer.Argument(help="A number (e.g. 1 or 0.5), or a category (e.g. 'spam').")],
    comment: Annotated[str | None, typer.Option(help="Free text stored with the score.")] = None,
    source: Annotated[str, typer.Option(help="human, code or judge.")] = "human",
    span: Annotated[str | None, typer.Option(help="Score one span of the trace instead of the whole.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Attach a score to a trace."""
    with client(url, api_key) as ph:
        score = ph.score(trace_id, name, _value(value), comment=comment, source=source, span_id=span)
    shown = score["value"] if score["value"] is not None else score["string_value"]
    emit(as_json, score, lambda: console.print(f"scored trace {score['trace_id']}: {score['name']} = {shown}"))


@scores_app.command("list")
def list_(
    trace: Annotated[str | None, typer.Option("--trace", help="Only this trace's scores.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only scores with this name.")] = None,
    source: Annotated[str | None, typer.Option(help="Only human, code or judge scores.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List scores, newest first."""
    with client(url, api_key) as ph:
        page = ph.list_scores(trace_id=trace, name=name, source=source, limit=limit, cursor=cursor)
    rows = page["data"]

    def render() -> None:
        table(
            "Scores",
            ["id", "created (UTC)", "trace", "name", "value", "source", "comment"],
            [
                [
                    s["id"],
                    when(s["created_at"]),
                    s["trace_id"],
                    s["name"],
                    s["value"] if s["value"] is not None else s["string_value"],
                    s["source"],
                    s["comment"],
                ]
                for s in rows
            ],
        )
        if page["next_cursor"]:
            console.print(f"more: --cursor {page['next_cursor']}")

    emit(as_json, page, render)
