"""`pilothouse up`: run the server (gateway, management API, dashboard) in one process."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from pilothouse.cli.common import console, err_console
from pilothouse.cli.credentials import root_options

# The server (FastAPI, SQLAlchemy, the providers) is imported when `up` runs, not when the CLI starts.
if TYPE_CHECKING:
    import socket

    from pilothouse.server.app import PilothouseApp
    from pilothouse.server.bootstrap import Bootstrap
    from pilothouse.server.state import AppState


def serve(app: PilothouseApp, sock: socket.socket, *, log_level: str) -> bool:
    """Run uvicorn on the already listening socket until it is stopped; False if the application never started."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        # An idle keep-alive connection is closed after this; a request body that stalls gets a 408 after
        # body_read_timeout_s (server/body_guard.py). uvicorn has no deadline for headers.
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return server.started


def key_banner(boot: Bootstrap, key_path: Path) -> list[str]:
    """What the start-up banner says of the owner key: the secret only when this start generated it (one
    given in PILOTHOUSE_ADMIN_KEY is the operator's already, and logs are not the place for it); always where
    it was saved."""
    if boot.secret is not None and boot.generated:
        return [
            f"bootstrap owner key (shown once, saved to {key_path}):",
            f"  [bold green]{boot.secret}[/bold green]",
        ]
    if boot.secret is not None:
        from pilothouse.server.bootstrap import ADMIN_KEY_ENV

        return [f"bootstrap owner key: the one set in {ADMIN_KEY_ENV} (not shown), saved to {key_path}"]
    if key_path.exists():
        return [f"owner key: saved to {key_path} on first start"]
    return [f"owner key: not at {key_path} (this store's keys were created elsewhere); pass --api-key to the CLI"]


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
    import logging

    from pilothouse.cli.listen import ListenError, bind_listener, url_host
    from pilothouse.config import ConfigError, load_settings
    from pilothouse.server.app import create_app
    from pilothouse.store.engine import StoreError

    try:
        settings = load_settings(
            config or root_options().config,
            host=host,
            port=port,
            data_dir=root_options().data_dir or data_dir,  # `pilothouse --data-dir` beats PILOTHOUSE_DATA_DIR
            database_url=database_url,
        )
    except ConfigError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # before anything starts: a taken port is one line naming its holder, not a banner and then a failure
        sock = bind_listener(settings.host, settings.port)
    except ListenError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    url = f"http://{url_host(settings.host)}:{sock.getsockname()[1]}"

    def announce(state: AppState) -> None:
        # Called once start-up is done; the socket has been listening since bind_listener.
        console.print(f"Pilothouse listening on [bold]{url}[/bold]  (OpenAI base URL: {url}/v1)")
        console.print(f"store: {state.store.engine.url.render_as_string(hide_password=True)}")
        for line in key_banner(state.boot, settings.admin_key_path):
            console.print(line)
        if state.warm_error:
            err_console.print(f"[yellow]warning:[/yellow] models not ready: {state.warm_error}")
        console.file.flush()

    os.environ.setdefault("GOMP_SPINCOUNT", "1000")
    try:
        app = create_app(settings, on_ready=announce)
        started = serve(app, sock, log_level=log_level)
    except (StoreError, ConfigError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    finally:
        sock.close()
    if not started:
        raise typer.Exit(3)  # uvicorn's start-up failure code; it logged why
