"""`pilothouse feedback TRACE_ID --up|--down [--comment TEXT]`: record an end user's feedback on a trace (also
its boolean score `feedback`), as an application does with `POST /api/feedback`."""

from __future__ import annotations

from typing import Annotated

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit

# One command, loaded lazily like the groups: a group whose callback is the command (no subcommands), options
# allowed after the argument.
feedback_app = typer.Typer(
    help="Record an end user's thumbs up or down on a trace.",
    subcommand_metavar="",
    context_settings={"allow_interspersed_args": True},
)


@feedback_app.callback(invoke_without_command=True)
def feedback(
    trace_id: Annotated[str, typer.Argument(help="Trace id (the x-pilothouse-trace-id response header).")],
    up: Annotated[bool, typer.Option("--up", help="Thumbs up.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Thumbs down.")] = False,
    comment: Annotated[str | None, typer.Option(help="What the end user wrote.")] = None,
    user: Annotated[str | None, typer.Option(help="The end user's id in your application.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record an end user's thumbs up (--up) or down (--down) on a trace, with an optional comment."""
    if up == down:
        raise typer.BadParameter("give exactly one of --up or --down", param_hint="--up / --down")
    with client(url, api_key) as ph:
        row = ph.feedback(trace_id, thumbs="up" if up else "down", comment=comment, user_id=user)
    emit(as_json, row, lambda: console.print(f"feedback on trace {row['trace_id']}: thumbs {row['thumbs']}"))
