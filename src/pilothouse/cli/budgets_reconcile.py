"""`pilothouse budgets reconcile`: compare the budget counters in Redis with the ledger (the traces), print the
drift per budget, and fix it (gateway/limits/ledger_reconcile.py). Runs against the database and Redis
directly, as configured for `pilothouse up` (pilothouse.toml, PILOTHOUSE_DATABASE_URL, PILOTHOUSE_REDIS_URL);
the servers do the same every `limits.reconcile_interval_s`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pilothouse.cli.budgets import budgets_app
from pilothouse.cli.common import JsonOpt, console, emit, err_console, table
from pilothouse.cli.credentials import root_options

if TYPE_CHECKING:
    from pilothouse.gateway.limits.ledger_reconcile import Drift


@budgets_app.command("reconcile")
def reconcile_budgets(
    fix: Annotated[bool, typer.Option("--fix/--report", help="Correct the drift (default) or only report it.")] = True,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="pilothouse.toml to read (default: as `pilothouse up`).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", envvar="PILOTHOUSE_DATABASE_URL", help="The servers' database.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Redis budget counters against the traces: drift per budget (exit 1 if any remains uncorrected)."""
    import asyncio

    from pilothouse.config import ConfigError, load_settings
    from pilothouse.gateway.limits.definitions import Definitions
    from pilothouse.gateway.limits.ledger_reconcile import reconcile
    from pilothouse.gateway.limits.redis_store import RedisLimitStore
    from pilothouse.store.engine import StoreError, open_store

    try:
        settings = load_settings(config or root_options().config, database_url=database_url)
    except ConfigError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not settings.redis_url:
        err_console.print(
            "nothing to reconcile: without PILOTHOUSE_REDIS_URL budgets are counted in each server process"
        )
        raise typer.Exit(0)
    try:
        store = open_store(settings.resolved_database_url(), migrate=False)
    except StoreError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None

    async def run() -> list[Drift]:
        limits = RedisLimitStore.from_url(settings.redis_url or "")
        try:
            budgets = Definitions(store, 60.0).reload().all_budgets()
            return await reconcile(store, limits, settings.limits.redis_prefix, budgets, time.time(), fix=fix)
        finally:
            await limits.aclose()

    try:
        report = asyncio.run(run())
    except Exception as exc:
        err_console.print(f"[red]error:[/red] cannot reconcile: {exc}")
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    rows = [d.to_dict() for d in report]
    emit(
        as_json,
        rows,
        lambda: table(
            "Budget counters against the ledger (USD)",
            ["budget", "Redis", "ledger", "settle pending", "in flight", "drift", "outcome"],
            [
                [
                    r["budget_id"],
                    r["redis_spent_usd"],
                    r["ledger_usd"],
                    r["settle_pending_usd"],
                    r["in_flight_usd"],
                    r["drift_usd"],
                    r["outcome"],
                ]
                for r in rows
            ],
        ),
    )
    if not as_json and not rows:
        console.print("no budgets defined")
    if any(d.outcome in ("drift", "changed") for d in report):
        raise typer.Exit(1)
