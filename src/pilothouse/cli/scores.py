"""`pilothouse scores`: record feedback and evaluation scores on traces and spans, and list them."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table, when

scores_app = typer.Typer(help="Add and list scores (feedback, evaluations) on traces.", no_args_is_help=True)


_BOOLEANS = {"true": True, "false": False}


def _value(text: str, data_type: str | None) -> float | bool | str:
    """A number is a numeric score, true or false a boolean one, anything else a categorical one; `data_type`
    (numeric, boolean, categorical) overrides the guess (`--type categorical` keeps "true" a category)."""
    if data_type == "categorical":
        return text
    if data_type in (None, "boolean") and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    try:
        number = float(text)
    except ValueError:
        if data_type is not None:
            raise typer.BadParameter(f"a {data_type} score needs a number or true/false, got {text!r}") from None
        return text
    if not math.isfinite(number):
        raise typer.BadParameter(f"a numeric score must be finite, got {text!r}", param_hint="VALUE")
    return number


def _shown(score: dict[str, Any]) -> Any:
    if score.get("data_type") == "boolean":
        return "true" if score["value"] else "false"
    return score["value"] if score["value"] is not None else score["string_value"]


@scores_app.command("add")
def add(
    trace_id: Annotated[str, typer.Argument(help="Trace id (the x-pilothouse-trace-id response header).")],
    name: Annotated[str, typer.Argument(help="Score name, e.g. 'helpful'.")],
    value: Annotated[str, typer.Argument(help="A number (e.g. 1 or 0.5), true or false, or a category (e.g. 'spam').")],
    comment: Annotated[str | None, typer.Option(help="Free text stored with the score.")] = None,
    source: Annotated[str, typer.Option(help="human, code or judge.")] = "human",
    span: Annotated[str | None, typer.Option(help="Score one span of the trace instead of the whole.")] = None,
    data_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="numeric, boolean or categorical (default: from VALUE: a number, true/false, text)."
        ),
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Attach a score to a trace or one of its spans."""
    if data_type is not None and data_type not in ("numeric", "boolean", "categorical"):
        raise typer.BadParameter("must be numeric, boolean or categorical", param_hint="--type")
    with client(url, api_key) as ph:
        score = ph.score(
            trace_id, name, _value(value, data_type), comment=comment, source=source, span_id=span, data_type=data_type
        )
    target = f"span {score['span_id']} of trace" if score["span_id"] else "trace"
    emit(
        as_json,
        score,
        lambda: console.print(f"scored {target} {score['trace_id']}: {score['name']} = {_shown(score)}"),
    )


@scores_app.command("list")
def list_(
    trace: Annotated[str | None, typer.Option("--trace", help="Only this trace's scores.")] = None,
    span: Annotated[str | None, typer.Option("--span", help="Only this span's scores.")] = None,
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
        page = ph.list_scores(trace_id=trace, span_id=span, name=name, source=source, limit=limit, cursor=cursor)
    rows = page["data"]

    def render() -> None:
        table(
            "Scores",
            ["id", "created (UTC)", "trace", "span", "name", "value", "type", "source", "comment"],
            [
                [
                    s["id"],
                    when(s["created_at"]),
                    s["trace_id"],
                    s["span_id"],
                    s["name"],
                    _shown(s),
                    s.get("data_type"),
                    s["source"],
                    s["comment"],
                ]
                for s in rows
            ],
        )
        if page["next_cursor"]:
            console.print(f"more: --cursor {page['next_cursor']}")

    emit(as_json, page, render)
