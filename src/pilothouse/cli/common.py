"""Options and output shared by the management commands: server URL and key, tables or JSON."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from pilothouse.client import Pilothouse, PilothouseError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="PILOTHOUSE_URL", help="Server URL (default: http://127.0.0.1:7300)."),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="PILOTHOUSE_API_KEY",
        help="API key (default: the bootstrap key saved by `pilothouse up` in the data directory).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table (for scripts).")]


@contextmanager
def client(url: str | None, api_key: str | None) -> Iterator[Pilothouse]:
    """A client whose errors end the command with a one-line message and exit code 1."""
    try:
        with Pilothouse(url, api_key) as ph:
            yield ph
    except PilothouseError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    out = Table(title=title)
    for col in columns:
        out.add_column(col, overflow="fold")
    for row in rows:
        out.add_row(*["-" if v is None else str(v) for v in row])
    console.print(out)


def emit(as_json: bool, value: Any, render: Callable[[], None]) -> None:
    if as_json:
        print_json(value)
    else:
        render()
