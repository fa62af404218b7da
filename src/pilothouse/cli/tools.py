"""`pilothouse tools`: the tool registry and the tool allow-lists of the key's project (docs/tools.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table

tools_app = typer.Typer(help="Register tools and say who may call them, with which arguments.", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _grants(grants: list[dict[str, Any]]) -> str:
    if not grants:
        return "-"
    return ", ".join(g["kind"] if g["kind"] == "project" else f"{g['kind']}:{g['subject']}" for g in grants)


@tools_app.command("register")
def register(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON file with one tool, a list, or `tools: [...]`.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register the file's tools in the key's project (an existing tool is updated when it changed)."""
    from pilothouse.tools.registry import ToolDefinitionError, load_tool_file

    try:
        definitions = load_tool_file(file.read_text(encoding="utf-8"), file.name)
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}") from None
    except ToolDefinitionError as exc:
        raise _fail(f"{file.name}: {exc}") from None
    with client(url, api_key) as ph:
        result = ph.request("POST", "/api/tools", json={"tools": [t.to_dict() for t in definitions]})
    rows = result["data"]
    emit(
        as_json,
        result,
        lambda: table(
            "Tools",
            ["name", "risk", "version", "change"],
            [[t["name"], t["risk"], t["version"], t["change"]] for t in rows],
        ),
    )


@tools_app.command("list")
def list_(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The project's tools and who may call them."""
    with client(url, api_key) as ph:
        result = ph.request("GET", "/api/tools")
    rows = [[t["name"], t["risk"], t["version"], _grants(t["grants"]), t["description"]] for t in result["data"]]
    emit(as_json, result, lambda: table("Tools", ["name", "risk", "version", "allowed to", "description"], rows))


@tools_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The tool's name.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A tool's definition (its argument schema) and its grants with their argument rules."""
    with client(url, api_key) as ph:
        tool = ph.request("GET", f"/api/tools/{name}")

    def render() -> None:
        console.print(f"[bold]{tool['name']}[/bold]  risk {tool['risk']}  version {tool['version']}")
        if tool["description"]:
            console.print(tool["description"], markup=False)
        console.print_json(json.dumps(tool["parameters"]))
        rows = [
            [g["id"], g["kind"], g["subject"] or "-", "; ".join(_rule(r) for r in g["rules"]) or "-"]
            for g in tool["grants"]
        ]
        table("Grants", ["id", "kind", "subject", "argument rules"], rows)

    emit(as_json, tool, render)


def _rule(rule: dict[str, Any]) -> str:
    checks = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in rule.items() if k != "arg"]
    return f"{rule['arg']}:{';'.join(checks)}"


@tools_app.command("allow")
def allow(
    name: Annotated[str, typer.Argument(help="The tool's name.")],
    key: Annotated[str | None, typer.Option("--key", help="Allow it to this key (its id) of the project.")] = None,
    project: Annotated[bool, typer.Option("--project", help="Allow it to every key of the project.")] = False,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Allow it to this agent (a workflow's name for it).")
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="An argument rule ARG:CHECK=VALUE[,VALUE] (url:domains=example.com,*.example.org; amount:max=100; "
            "path:path_prefixes=/srv/reports; currency:enum=USD,EUR); repeatable.",
        ),
    ] = None,
    rules_file: Annotated[
        Path | None, typer.Option("--rules-file", help="A YAML or JSON list of argument rules.")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Allow a tool to the project, one key or one agent (again: replaces that grant's rules)."""
    from pilothouse.tools.constraints import RuleError, parse_rule_text

    if sum((key is not None, project, agent is not None)) != 1:
        raise _fail("say who may call it: one of --project, --key ID or --agent NAME")
    kind, subject = ("key", key) if key is not None else ("agent", agent) if agent is not None else ("project", None)
    try:
        rules = [parse_rule_text(text).to_dict() for text in rule or ()]
    except RuleError as exc:
        raise _fail(str(exc)) from None
    if rules_file is not None:
        import yaml

        try:
            loaded = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise _fail(f"cannot read rules from {rules_file}: {exc}") from None
        rules += loaded if isinstance(loaded, list) else [loaded]
    body = {"kind": kind, "subject": subject, "rules": rules}
    with client(url, api_key) as ph:
        grant = ph.request("POST", f"/api/tools/{name}/grants", json=body)
    who = "the project" if kind == "project" else f"{kind} {subject}"
    emit(as_json, grant, lambda: console.print(f"{name} allowed to {who} ({grant['change']}; grant {grant['id']})"))


@tools_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The tool's name.")],
    grant_id: Annotated[str, typer.Argument(help="The grant's id (`pilothouse tools show NAME`).")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove one grant of a tool."""
    with client(url, api_key) as ph:
        result = ph.request("DELETE", f"/api/tools/{name}/grants/{grant_id}")
    emit(as_json, result, lambda: console.print(f"revoked grant {grant_id} of {name}"))


@tools_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The tool's name.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a tool and its grants from the registry (its calls are then refused)."""
    with client(url, api_key) as ph:
        result = ph.request("DELETE", f"/api/tools/{name}")
    emit(as_json, result, lambda: console.print(f"removed tool {name}"))


@tools_app.command("check")
def check(
    name: Annotated[str, typer.Argument(help="The tool's name.")],
    args: Annotated[str, typer.Option("--args", help="The call's arguments as a JSON object.")] = "{}",
    key: Annotated[
        str | None, typer.Option("--key", help="Decide for this key of the project (default: yours).")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Decide for this agent.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The gateway's decision on a call of this tool; exit code 1 when it would not be allowed."""
    body = {"arguments": args, "key": key, "agent": agent}
    with client(url, api_key) as ph:
        decision = ph.request("POST", f"/api/tools/{name}/check", json=body)
    emit(as_json, decision, lambda: console.print(f"{decision['verdict']}: {decision['reason']}", markup=False))
    if decision["verdict"] != "allowed":
        raise typer.Exit(1)
