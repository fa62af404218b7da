"""`pilothouse up`: run the server (gateway, management API, dashboard) in one process."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from pilothouse.cli.common import console, err_console
from pilothouse.config import ConfigError, load_settings
from pilothouse.server.app import create_app
from pilothouse.server.state import AppState
from pilothouse.store.engine import StoreError


def up(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: 7300).")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="PILOTHOUSE_DATA_DIR",
            help="Where SQLite and the admin key live (default: ./.pilothouse).",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="PILOTHOUSE_DATABASE_URL",
            help="sqlite:///PATH or postgresql+psycopg://...",
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="pilothouse.toml to read.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
) -> None:
    """Start Pilothouse: the OpenAI-compatible gateway at /v1, the API at /api, health at /healthz, /readyz."""
    try:
        settings = load_settings(config, host=host, port=port, data_dir=data_dir, database_url=database_url)
    except ConfigError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = f"http://{settings.host}:{settings.port}"

    def announce(state: AppState) -> None:
        console.print(f"Pilothouse listening on [bold]{url}[/bold]  (OpenAI base URL: {url}/v1)")
        console.print(f"store: {state.store.engine.url.render_as_string(hide_password=True)}")
        if state.boot.secret is not None:
            console.print(f"bootstrap admin key (shown once, saved to {settings.admin_key_path}):")
            console.print(f"  [bold green]{state.boot.secret}[/bold green]")
        else:
            console.print(f"admin key: see {settings.admin_key_path} (created on first start)")
        if state.warm_error:
            err_console.print(f"[yellow]warning:[/yellow] models not ready: {state.warm_error}")
        console.file.flush()

    os.environ.setdefault("GOMP_SPINCOUNT", "1000")
    app = create_app(settings, on_ready=announce)
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            access_log=False,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=10,
        )
    except (StoreError, ConfigError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
