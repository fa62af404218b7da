"""Options and output shared by the management commands: server URL and key, tables or JSON.

The output contract (README, "Manage it"): on a terminal a table is a Rich table; when stdout is not a terminal
(piped, redirected) it is tab-separated text, `# title`, a header row, then one row per line, no value ever
wrapped or cut, so `pilothouse cost report | grep smollm2-135m` prints the row. `--json` gives everything.

Every command module imports this one, and `pilothouse --help` imports every command module: keep the imports
here light (no httpx until a client is made, no server, no SQLAlchemy). tests/cli/test_startup.py checks it."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.errors import MarkupError
from rich.table import Table
from rich.text import Text

from pilothouse.cli.credentials import CredentialsError, find_api_key
from pilothouse.sdk.client import Pilothouse, PilothouseError

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
    """A client whose errors end the command with a one-line message and exit code 1. Without a key given, the
    owner key saved in the server's data directory is used (cli/credentials.py); a 401 then says where the CLI
    looked."""
    try:
        lookup = find_api_key(api_key)
    except CredentialsError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    try:
        with Pilothouse(url, lookup.key) as ph:
            yield ph
    except PilothouseError as exc:
        if exc.status == 401 and lookup.key is None:
            first, hint = lookup.missing()
            err_console.print(f"[red]error:[/red] {first}", highlight=False)
            err_console.print(hint, highlight=False, markup=False)
        elif exc.status == 401 and lookup.from_file is not None:
            err_console.print(f"[red]error:[/red] {exc.message} (the key saved at {lookup.from_file})", highlight=False)
        else:
            err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Rich table on a terminal; tab-separated lines when piped (see the module's docstring). None shows as -."""
    cells = [["-" if v is None else str(v) for v in row] for row in rows]
    if not console.is_terminal:
        write = console.file.write
        write(f"# {_tsv_cell(title)}\n")
        for line in [list(columns), *[[_plain(c) for c in row] for row in cells]]:
            write("\t".join(_tsv_cell(c) for c in line) + "\n")
        console.file.flush()
        return
    out = Table(title=title)
    for col in columns:
        out.add_column(col, overflow="fold")
    for row in cells:
        out.add_row(*[_styled(c) for c in row])
    console.print(out)


def _styled(cell: str) -> Text:
    """A cell with the colour tags commands add (`[green]pass[/green]`); a value that is not valid markup (a
    name like `a[/b]`) is data, shown as it is instead of failing the command."""
    try:
        return Text.from_markup(cell)
    except MarkupError:
        return Text(cell)


def _plain(cell: str) -> str:
    return _styled(cell).plain


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _tsv_cell(value: str) -> str:
    """One value on one line: a backslash, tab, newline or carriage return in it is written \\\\, \\t, \\n, \\r
    (the escapes of PostgreSQL's COPY text format), so a row is always one line of exactly len(columns) fields."""
    return value.translate(_TSV_ESCAPES)


def emit(as_json: bool, value: Any, render: Callable[[], None]) -> None:
    if as_json:
        print_json(value)
    else:
        render()
