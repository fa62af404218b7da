"""`pilothouse policy`: guard policies as files: push, list, show, disable, and test one locally.

`push`, `list`, `show` and `disable` talk to the server (`/api/policies`); `test` runs a policy file in this
process, without a server: the scanners it names are built here (a model may load, once) and each rule's
verdict is printed; the exit code is 1 when the policy would block the input or the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table, when

policy_app = typer.Typer(
    help="Guard policies: which scanners run on input and output, and what they do (block, redact, flag, shadow).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="The policy's name (its `name:` field).")]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(1)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"{path}: {exc}") from None


@policy_app.command("push")
def push(
    file: Annotated[Path, typer.Argument(help="The policy file (YAML).")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store the policy for the key's project (admin role): a new version when its body changed; it is enabled
    and in force at once."""
    content = _read(file)
    with client(url, api_key) as ph:
        pushed = ph.request("POST", "/api/policies", json={"content": content})
    if pushed["created"]:
        text = f"pushed {pushed['name']} version {pushed['version']} ({pushed['mode']})"
    else:
        text = f"{pushed['name']} unchanged at version {pushed['version']}"
    if pushed["enabled_again"]:
        text += "; enabled again"
    emit(as_json, pushed, lambda: console.print(text, highlight=False, markup=False))


@policy_app.command("list")
def list_policies(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The project's policies and their latest versions."""
    with client(url, api_key) as ph:
        found = ph.request("GET", "/api/policies")
    rows = [
        [
            p["name"],
            str(p["version"]),
            "yes" if p["enabled"] else "no",
            p["mode"],
            when(p["updated_at"]),
            p["description"],
        ]
        for p in found
    ]
    emit(
        as_json,
        found,
        lambda: table("policies", ["name", "version", "enabled", "mode", "updated", "description"], rows),
    )


@policy_app.command("show")
def show(
    name: NameArg,
    version: Annotated[int | None, typer.Option("--version", "-v", help="A version (default: the latest).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A policy version as pushed (the file), with its state."""
    with client(url, api_key) as ph:
        found = ph.request("GET", f"/api/policies/{name}", params={} if version is None else {"version": version})

    def render() -> None:
        state = "enabled" if found["enabled"] else "disabled"
        console.print(
            f"# {found['name']} version {found['shown_version']} (latest {found['version']}, {state}, "
            f"{found['mode']}; pushed {when(found['created_at'])} by {found['author'] or '-'})",
            highlight=False,
            markup=False,
        )
        console.print(found["source_text"] or "", highlight=False, markup=False, end="")

    emit(as_json, found, render)


@policy_app.command("disable")
def disable(name: NameArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Stop applying a policy (admin role); its versions are kept and pushing it again enables it."""
    with client(url, api_key) as ph:
        found = ph.request("POST", f"/api/policies/{name}/disable")
    text = f"disabled {name}" if found["changed"] else f"{name} was already disabled"
    emit(as_json, found, lambda: console.print(text, highlight=False, markup=False))


@policy_app.command("test")
def test(
    file: Annotated[Path, typer.Argument(help="The policy file (YAML).")],
    input_text: Annotated[
        str | None, typer.Option("--input", "-i", help="A user message to run the input rules over.")
    ] = None,
    output_text: Annotated[
        str | None, typer.Option("--output", "-o", help="A model answer to run the output rules over.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a policy file here, without a server: print each rule's verdict and the decision. Exit code 1 when
    it would block."""
    from pilothouse.guards.policy.engine import ScannerCache, compile_policy, evaluate  # lazy: loads scanners
    from pilothouse.guards.policy.loader import PolicyError, parse_policy
    from pilothouse.guards.scanner import ScanContext

    if input_text is None and output_text is None:
        raise _fail("give --input and/or --output")
    try:
        compiled = compile_policy(parse_policy(_read(file)), 0, ScannerCache())
    except PolicyError as exc:
        raise _fail(f"{file}: {exc}") from None
    report: dict[str, Any] = {"policy": compiled.name, "mode": compiled.policy.mode, "blocked": False}
    directions = (
        ("input", input_text, compiled.input, ScanContext(role="user", direction="input")),
        ("output", output_text, compiled.output, ScanContext(role="assistant", direction="output")),
    )
    for direction, text, rules, ctx in directions:
        if text is None:
            continue
        result = evaluate(rules, text, ctx)
        report[direction] = {
            "decision": "block" if result.blocked is not None else "allow",
            "text": result.text,
            "rules": [
                {
                    "rule": r.rule.index,
                    "scanner": r.rule.rule.scanner,
                    "score": round(r.score, 4),
                    "threshold": r.rule.rule.threshold,
                    "action": r.rule.rule.action,
                    "decision": r.decision,
                    "would": r.would,
                    "kinds": sorted(r.kinds),
                    "latency_ms": round(r.latency_ms, 3),
                }
                for r in result.records
            ],
        }
        report["blocked"] = report["blocked"] or result.blocked is not None
    emit(as_json, report, lambda: _print_test(report))
    if report["blocked"]:
        raise typer.Exit(1)


def _print_test(report: dict[str, Any]) -> None:
    for direction in ("input", "output"):
        found = report.get(direction)
        if found is None:
            continue
        rows = [
            [
                str(r["rule"]),
                r["scanner"],
                f"{r['score']:.2f}",
                f"{r['threshold']:g}",
                r["action"],
                r["decision"] + (f" (would {r['would']})" if r["would"] else ""),
                ", ".join(r["kinds"]),
                f"{r['latency_ms']:.1f}",
            ]
            for r in found["rules"]
        ]
        columns = ["rule", "scanner", "score", "threshold", "action", "decision", "kinds", "ms"]
        table(f"{report['policy']}: {direction} rules", columns, rows)
        console.print(f"{direction}: {found['decision']}", highlight=False, markup=False)
        if found["decision"] != "block":
            console.print(f"{direction} sent on: {found['text']}", highlight=False, markup=False)
