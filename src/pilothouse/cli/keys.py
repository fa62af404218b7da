"""`pilothouse keys` and `pilothouse projects`: manage API keys and projects on a running server."""

from __future__ import annotations

from typing import Annotated

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table, when
from pilothouse.roles import ROLES

keys_app = typer.Typer(help="Create, list and revoke API keys (secrets are shown once).", no_args_is_help=True)
projects_app = typer.Typer(help="Create and list projects (the tenant boundary).", no_args_is_help=True)


def _role(value: str) -> str:
    if value not in ROLES:
        raise typer.BadParameter(f"{value!r} is not a role: choose one of {', '.join(ROLES)}")
    return value


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A label for the key, e.g. 'checkout-service'.")],
    role: Annotated[
        str,
        typer.Option(
            help=f"One of {', '.join(ROLES)} (lowest to highest; only an owner key creates owner keys).",
            callback=_role,
        ),
    ] = "service",
    project: Annotated[
        str | None, typer.Option(help="Project id or name (default: the caller's; another one: owner keys).")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print its secret, which cannot be shown again."""
    with client(url, api_key) as ph:
        key = ph.create_key(name, role=role, project=project)
    if as_json:
        emit(True, key, lambda: None)
        return
    console.print(f"created key [bold]{key['id']}[/bold] ({key['role']}) in project {key['project_id']}")
    console.print(f"secret (shown once): [bold green]{key['secret']}[/bold green]")


@keys_app.command("list")
def list_(
    active: Annotated[bool, typer.Option("--active", help="Hide revoked keys.")] = False,
    project: Annotated[str | None, typer.Option(help="Owner keys: another project (id or name), or `all`.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the keys of your project (never their secrets)."""
    with client(url, api_key) as ph:
        keys = ph.list_keys(include_revoked=not active, project=project)
    emit(
        as_json,
        keys,
        lambda: table(
            "API keys",
            ["id", "project", "name", "role", "prefix", "created", "revoked"],
            [
                [
                    k["id"],
                    k["project_id"],
                    k["name"],
                    k["role"],
                    k["prefix"] + "…",
                    when(k["created_at"]),
                    when(k["revoked_at"]),
                ]
                for k in keys
            ],
        ),
    )


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (key_...), from `pilothouse keys list`.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key; requests with it fail from then on (other replicas within seconds)."""
    with client(url, api_key) as ph:
        key = ph.revoke_key(key_id)
    emit(as_json, key, lambda: console.print(f"revoked {key['id']} ({key['name']})"))


@projects_app.command("create")
def create_project(
    name: Annotated[str, typer.Argument(help="Project name (letters, digits, . _ -).")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a project (owner keys); then create its keys with `pilothouse keys create --project NAME`."""
    with client(url, api_key) as ph:
        project = ph.create_project(name)
    emit(as_json, project, lambda: console.print(f"created project {project['name']} ({project['id']})"))


@projects_app.command("list")
def list_projects(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List projects (owner keys)."""
    with client(url, api_key) as ph:
        projects = ph.list_projects()
    emit(
        as_json,
        projects,
        lambda: table(
            "Projects",
            ["id", "name", "created"],
            [[p["id"], p["name"], when(p["created_at"])] for p in projects],
        ),
    )
