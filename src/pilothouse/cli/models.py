"""`pilothouse models`: the model catalog a server offers."""

from __future__ import annotations

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, emit, table

models_app = typer.Typer(help="List the models the gateway serves.", no_args_is_help=True)


@models_app.command("list")
def list_(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List public model names and their providers."""
    with client(url, api_key) as ph:
        models = ph.list_models()
    emit(
        as_json,
        models,
        lambda: table("Models", ["id", "provider"], [[m["id"], m["owned_by"]] for m in models]),
    )
