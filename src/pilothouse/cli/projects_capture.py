"""`pilothouse projects capture [PROJECT] [off|redacted|full]`: show or set a project's content capture."""

from __future__ import annotations

from typing import Annotated

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit
from pilothouse.cli.keys import projects_app


@projects_app.command("capture")
def capture(
    project: Annotated[str | None, typer.Argument(help="Project id or name (default: the key's project).")] = None,
    mode: Annotated[
        str | None, typer.Argument(help="off (numbers only), redacted (PII and secrets masked) or full.")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the project's content capture, or set it (admin role): what of its traces' text is stored."""
    if mode is None and project in ("off", "redacted", "full"):  # `capture off`: the key's own project
        project, mode = None, project
    if mode is not None and mode not in ("off", "redacted", "full"):
        raise typer.BadParameter(f"{mode!r}: choose off, redacted or full", param_hint="MODE")
    with client(url, api_key) as ph:
        view = ph.content_capture(project=project) if mode is None else ph.set_content_capture(mode, project=project)
    was = f" (was {view['previous']})" if "previous" in view else f" ({view['source']})"
    emit(as_json, view, lambda: console.print(f"content capture of {view['project_id']}: {view['mode']}{was}"))
