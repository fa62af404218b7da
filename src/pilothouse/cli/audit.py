"""`pilothouse audit`: read the hash-chained audit log and verify that no row was altered or removed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape

from pilothouse.cli.common import (
    JsonOpt,
    KeyOpt,
    UrlOpt,
    client,
    console,
    emit,
    err_console,
    print_json,
    table,
    when,
)

if TYPE_CHECKING:
    from pilothouse.audit.chain import BrokenLink

audit_app = typer.Typer(help="Audit log: list events, verify the hash chain.", no_args_is_help=True)


def details_text(details: dict[str, Any] | None) -> str:
    """An event's details on one line, `key=value` (strings bare, other values as compact JSON)."""
    if not details:
        return ""
    parts = []
    for key, value in details.items():
        shown = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        parts.append(f"{key}={shown}")
    return "  ".join(parts)


@audit_app.command("list")
def list_(
    after: Annotated[int, typer.Option(min=0, help="Only events after this sequence number (for paging).")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many events.")] = 100,
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action",
            "-a",
            help="Only this action (repeatable); a prefix such as `prompt.label` matches `prompt.label.move` too.",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Events at or after: 7d, 24h, 30m before now, epoch seconds or ISO 8601.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Events before: 7d, 24h, 30m before now, epoch seconds or ISO 8601.")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Owner keys: another project (id or name), or `all`.")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List audit events of your project, oldest first, with their details."""
    with client(url, api_key) as ph:
        events = ph.audit_events(
            after=after, limit=limit, project=project, action=action or None, since=since, until=until
        )

    def render() -> None:
        table(
            "Audit events",
            ["seq", "time (UTC)", "actor", "action", "target", "details"],
            [
                [e["seq"], when(e["ts"]), e["actor"], e["action"], e["target"], escape(details_text(e["details"]))]
                for e in events
            ],
        )
        if not events:
            console.print("no audit events match")

    emit(as_json, events, render)


def _verify_database(database_url: str) -> tuple[int, BrokenLink | None]:
    """Verify the chain straight from the database; a missing or foreign database ends with one error line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from pilothouse.audit.chain import verify_chain
    from pilothouse.store.engine import StoreError, open_store

    try:
        parsed = make_url(database_url)
    except ArgumentError:
        parsed = None
    if parsed is not None and parsed.get_backend_name() == "sqlite" and "uri" not in parsed.query:
        path = parsed.database or ""
        if path not in ("", ":memory:") and not Path(path).is_file():
            err_console.print(f"[red]error:[/red] no database file at {path}")
            raise typer.Exit(1)
    try:
        store = open_store(database_url, migrate=False)
    except StoreError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    try:
        with store.connect() as conn:
            return verify_chain(conn)
    except SQLAlchemyError as exc:
        safe = store.engine.url.render_as_string(hide_password=True)
        reason = getattr(exc, "orig", None) or exc
        err_console.print(
            f"[red]error:[/red] cannot read the audit log at {safe} (is it a Pilothouse database?): {reason}"
        )
        raise typer.Exit(1) from None
    finally:
        store.dispose()


@audit_app.command("verify")
def verify(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Verify the database directly (no server needed), e.g. sqlite:///.pilothouse/pilothouse.db.",
        ),
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the hash chain; exit 1 naming the first broken link if any row was altered or removed."""
    if database_url:
        checked, broken = _verify_database(database_url)
        result: dict[str, Any] = {
            "ok": broken is None,
            "checked": checked,
            "broken": None if broken is None else {"seq": broken.seq, "reason": broken.reason},
        }
    else:
        with client(url, api_key) as ph:
            result = ph.verify_audit()
    if as_json:
        print_json(result)
    elif result["ok"]:
        console.print(f"[green]audit chain intact[/green]: {result['checked']} events verified")
    else:
        err_console.print(
            f"[red]audit chain broken at event {result['broken']['seq']}[/red]: {result['broken']['reason']} "
            f"({result['checked']} events before it verified)"
        )
    if not result["ok"]:
        raise typer.Exit(1)
