"""`pilothouse audit`: read the hash-chained audit log and verify that no row was altered or removed."""

from __future__ import annotations

import sys
from dataclasses import dataclass
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
from pilothouse.cli.credentials import root_options

if TYPE_CHECKING:
    from pilothouse.audit.verification import AuditReport

audit_app = typer.Typer(
    help="Audit log: list events, verify the hash chain and its signed checkpoints.", no_args_is_help=True
)


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
    actor: Annotated[str | None, typer.Option(help="Only events by this actor (a key id).")] = None,
    target: Annotated[str | None, typer.Option(help="Only events on this target (key id, prompt, policy).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List audit events of your project, oldest first, with their details."""
    with client(url, api_key) as ph:
        events = ph.audit_events(
            after=after,
            limit=limit,
            project=project,
            action=action or None,
            since=since,
            until=until,
            actor=actor,
            target=target,
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


@dataclass(frozen=True, slots=True)
class _Keys:
    """Where `verify --database-url` finds the public keys and the checkpoint file."""

    keys: list[Path]
    checkpoint_file: Path | None
    explicit: bool
    """The keys were named (flag or configuration): a missing one is an error, not a fallback."""


def _find_keys(database_url: str, public_keys: list[Path], checkpoint_file: Path | None, config: Path | None) -> _Keys:
    """The keys named by `--public-key`, else the configured signing key, else the one `pilothouse up` created
    beside a SQLite database or in the data directory; plus the configured rotated-out public keys."""
    from sqlalchemy.engine import make_url

    from pilothouse.config import ConfigError, load_settings

    try:
        settings = load_settings(config or root_options().config)
    except ConfigError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    trusted = list(settings.audit.trusted_public_keys)
    if public_keys:
        return _Keys([*public_keys, *trusted], checkpoint_file or settings.audit.checkpoint_log_path, True)
    if settings.audit.signing_key_path is not None:
        key = settings.audit.signing_key_path
        return _Keys([key, *trusted], checkpoint_file or settings.audit_checkpoint_log_path, True)
    candidates = [settings.audit_key_path]
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        candidates.insert(0, Path(parsed.database or "").parent / "audit-signing-key.pem")
    for key in candidates:
        if key.is_file():
            return _Keys([key, *trusted], checkpoint_file or key.parent / "audit-checkpoints.jsonl", False)
    return _Keys(trusted, checkpoint_file, False)


def _verify_database(database_url: str, found: _Keys) -> AuditReport:
    """Verify the log straight from the database; a missing or foreign database, or a key that is missing or
    needed and not found, ends with one error line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from pilothouse.audit.checkpoints import CheckpointFile, stored_checkpoints
    from pilothouse.audit.signing import AuditKeyError, TrustedKeys, load_public_key
    from pilothouse.audit.verification import verify_log
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
            try:
                trusted = TrustedKeys([load_public_key(k) for k in found.keys])
            except AuditKeyError as exc:
                err_console.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(1) from None
            if not found.keys and stored_checkpoints(conn):
                err_console.print(
                    "[red]error:[/red] the database has signed checkpoints but no key to check them was found: "
                    "give --public-key FILE (`pilothouse audit public-key` exports it) or --config"
                )
                raise typer.Exit(1)
            file = None if found.checkpoint_file is None else CheckpointFile(found.checkpoint_file)
            report = verify_log(conn, trusted, file)
            if not found.keys:
                report.warnings.insert(0, "no audit key was found: only the hash chain was verified")
            return report
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
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="With --database-url: a PEM key whose checkpoints are trusted (repeatable; default: the signing "
            "key of the configuration, or beside a SQLite database).",
        ),
    ] = None,
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoint-file", help="With --database-url: the checkpoint file (default: beside the key)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="pilothouse.toml to read (default: as `pilothouse up`).")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the hash chain and check it against the signed checkpoints; exit 1 naming the first problem:
    an event altered or removed, the newest events cut, the table replaced."""
    if database_url:
        found = _find_keys(database_url, public_key or [], checkpoint_file, config)
        result = _verify_database(database_url, found).to_dict()
    else:
        with client(url, api_key) as ph:
            result = ph.verify_audit()
    if as_json:
        print_json(result)
    elif result["ok"]:
        latest = result.get("latest_checkpoint")
        signed = (
            f"; {result['checkpoints']} signed checkpoints, the newest covers event {latest['last_seq']} "
            f"({result['unsigned_events']} newer events not yet checkpointed)"
            if latest
            else "; no signed checkpoint yet"
        )
        console.print(f"[green]audit chain intact[/green]: {result['checked']} events verified{signed}")
    else:
        err_console.print(
            f"[red]audit chain broken at event {result['broken']['seq']}[/red]: {result['broken']['reason']} "
            f"({result['checked']} events before it verified)"
        )
        for problem in result.get("problems", [])[1:]:
            err_console.print(f"  also at event {problem['seq']}: {problem['reason']}")
    if not as_json:
        for warning in result.get("warnings", []):
            err_console.print(f"[yellow]warning:[/yellow] {warning}")
    if not result["ok"]:
        raise typer.Exit(1)


@audit_app.command("public-key")
def public_key_(
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="Read it from this signing key file instead of the server.")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the PEM public key that verifies the audit checkpoints (give it to auditors)."""
    if key_file is not None:
        from pilothouse.audit.signing import AuditKeyError, load_public_key, public_pem

        try:
            pem = public_pem(load_public_key(key_file))
        except AuditKeyError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    else:
        with client(url, api_key) as ph:
            pem = ph.request("GET", "/api/audit/public-key")["public_key_pem"]

    def render() -> None:
        sys.stdout.write(pem)

    emit(as_json, {"public_key_pem": pem}, render)


@audit_app.command("checkpoint")
def checkpoint(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Sign a checkpoint of the chain head now (the server also does it periodically and at shutdown)."""
    with client(url, api_key) as ph:
        written = ph.request("POST", "/api/audit/checkpoints")
    emit(
        as_json,
        written,
        lambda: console.print(
            f"checkpoint #{written['id']}: {written['event_count']} events, head {written['head_hash'][:16]}..., "
            f"key {written['key_id']}"
        ),
    )
