"""`pilothouse prompt`: push and pull a folder of prompt files, list, show, diff, label, protect, render.

Other modules add commands to `prompt_app` (`test`, `promote`, `canary`, ...); cli/main.py imports them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table, when

prompt_app = typer.Typer(
    help="Prompts as code: push/pull a folder of prompt files, versions, labels, diffs and previews.",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(1)


def _split(ref_text: str) -> tuple[str, str]:
    from pilothouse.prompts.registry.refs import parse_ref  # lazy: `pilothouse --help` stays fast

    try:
        ref = parse_ref(ref_text)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return ref.name, ref.selector


def _labels(labels: dict[str, Any]) -> str:
    parts = []
    for name, label in sorted(labels.items()):
        splits = label["splits"]
        target = (
            "/".join(f"{s['version']}:{s['weight']:g}%" for s in splits) if len(splits) > 1 else splits[0]["version"]
        )
        parts.append(f"{name}{'🔒' if label['protected'] else ''}→{target}")
    return ", ".join(parts)


# -- push / pull ------------------------------------------------------------------------------------------------
@prompt_app.command("push")
def push(
    directory: Annotated[Path, typer.Argument(help="The folder of prompt files (*.yaml, *.yml, *.md, *.tests.yaml).")],
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message of new versions.")] = None,
    author: Annotated[str | None, typer.Option(help="Author of new versions (default: the key's name).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a version of every prompt whose content changed (idempotent: unchanged files make none); a file
    whose content is unchanged but whose text differs (a comment) replaces the latest version's stored text."""
    from pilothouse.prompts.registry.folder_state import FolderStateError, record_push

    if not directory.is_dir():
        raise _fail(f"{directory} is not a folder")
    from pilothouse.prompts.registry.files import discover  # lazy: `pilothouse --help` stays fast

    paths = discover(directory)
    if not paths:
        raise _fail(f"no prompt files in {directory} (*.yaml, *.yml, or *.md with front matter)")
    files = []
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with Progress(*columns, console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("reading", total=len(paths))
        for path in paths:
            try:
                files.append({"path": path.name, "content": path.read_bytes().decode("utf-8")})
            except (OSError, UnicodeDecodeError) as exc:
                raise _fail(f"{path}: {exc}") from None
            progress.advance(task)
    with client(url, api_key) as ph:
        if as_json:
            results = ph.push_prompts(files, message=message, author=author)
        else:
            with console.status(f"pushing {len(files)} files to {ph.url}"):
                results = ph.push_prompts(files, message=message, author=author)

    try:
        record_push(directory, files, results)
    except (FolderStateError, OSError) as exc:
        err_console.print(Text(f"warning: pushed, but the folder's state was not saved: {exc}"))

    def render() -> None:
        rows = []
        for r in results:
            if r["kind"] == "prompt":
                status = {
                    "created": f"new version {r['version']}",
                    "source_updated": f"source updated, no new version (v{r['version']})",
                }.get(r["status"], f"unchanged (v{r['version']})")
                rows.append([r["path"], r["name"], status, r["content_hash"][:12], ", ".join(r["labels_moved"])])
            else:
                rows.append([r["path"], r["name"], f"tests {r['status']} ({r['cases']} cases)", "", ""])
        table("Pushed", ["file", "prompt", "result", "hash", "labels moved"], rows)
        created = sum(1 for r in results if r["kind"] == "prompt" and r["status"] == "created")
        updated = sum(1 for r in results if r["kind"] == "prompt" and r["status"] == "source_updated")
        also = f", {updated} source text(s) updated" if updated else ""
        console.print(f"{created} new version(s){also}, {len(results)} file(s)")

    emit(as_json, results, render)


@prompt_app.command("pull")
def pull(
    directory: Annotated[Path, typer.Argument(help="Where to write the prompt files (created if missing).")],
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Only these prompts: NAME, or NAME@REF (a version, label or sha:PREFIX). Default: all."),
    ] = None,
    label: Annotated[str, typer.Option(help="Write the version each prompt's label names.")] = "production",
    all_latest: Annotated[bool, typer.Option("--all-latest", help="Write each prompt's newest version.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files with local changes (never pushed or pulled).")
    ] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write prompts back as files (exactly as last pushed) with their test files. A file edited since it was
    last pushed or pulled is not overwritten without --force: the command shows the diff and writes nothing."""
    from pilothouse.prompts.registry.folder_state import FolderState, FolderStateError, apply_pull, plan_pull

    try:
        state = FolderState.load(directory)
    except FolderStateError as exc:
        raise _fail(str(exc)) from None
    with client(url, api_key) as ph:
        pulled = ph.pull_prompts(label=label, latest=all_latest, names=names or None)
    try:
        plan = plan_pull(directory, pulled["files"], state)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    conflicts = plan.conflicts
    if conflicts and not force:
        if as_json:
            emit(
                True,
                {"written": False, "conflicts": [{"file": f.name, "diff": f.diff} for f in conflicts]},
                lambda: None,
            )
        else:
            for f in conflicts:
                _print_diff(f.diff)
        raise _fail(
            f"{len(conflicts)} file(s) changed here since they were last pushed or pulled: "
            f"{', '.join(f.name for f in conflicts)}; nothing was written (the diff shows what pulling would do). "
            "Push them first, or pull again with --force to overwrite them"
        )
    try:
        apply_pull(directory, plan, state, force=force)
    except OSError as exc:
        raise _fail(f"{directory}: {exc}") from None
    if as_json:
        emit(True, {**pulled, "written": True, "actions": {f.name: f.action for f in plan.files}}, lambda: None)
        return
    rows = []
    for f in plan.files:
        added, removed = f.changed_lines
        status = {
            "create": "written",
            "unchanged": "unchanged",
            "update": f"updated (+{added} -{removed} lines)",
            "conflict": f"overwritten local edits (+{added} -{removed} lines)",
        }[f.action]
        rows.append([f.name, f.prompt, f.version or "", status])
    table("Pulled", ["file", "prompt", "version", "status"], rows)
    if pulled["skipped"]:
        which = "no versions" if all_latest else f"no '{label}' label"
        console.print(Text(f"not written ({which}): {', '.join(pulled['skipped'])}"))


# -- reading ----------------------------------------------------------------------------------------------------
@prompt_app.command("list")
def list_(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List prompts with their newest version and labels (🔒: protected)."""
    with client(url, api_key) as ph:
        prompts = ph.list_prompts()
    emit(
        as_json,
        prompts,
        lambda: table(
            "Prompts",
            ["name", "latest", "labels", "updated"],
            [[p["name"], p["latest_version"], _labels(p["labels"]), when(p["updated_at"])] for p in prompts],
        ),
    )


def _print_version(v: dict[str, Any]) -> None:
    console.print(
        Text.assemble((f"{v['name']}@{v['version']}", "bold"), f"  sha:{v['content_hash'][:12]}  ", v["type"] or "")
    )
    console.print(
        Text(f"labels: {', '.join(v['labels']) or '-'}   author: {v['author'] or '-'}   {when(v['created_at'])}")
    )
    if v.get("message"):
        console.print(Text(f"message: {v['message']}"))
    if v["config"]:
        table("Configuration", ["key", "value"], [[k, json.dumps(val)] for k, val in v["config"].items()])
    if v["variables"]:
        rows = [
            [k, s["type"], "yes" if s.get("required", True) else "no", json.dumps(s.get("default")), s.get("enum")]
            for k, s in v["variables"].items()
        ]
        table("Variables", ["name", "type", "required", "default", "enum"], rows)
    template = v["template"]
    if template.get("type") == "text":
        console.print(Text("── text", style="bold cyan"))
        console.print(Text(template.get("text", "")))
    for msg in template.get("messages") or []:
        console.print(Text(f"── {msg['role']}", style="bold cyan"))
        console.print(Text(msg["content"]))


@prompt_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME (versions and labels), or NAME@VERSION|LABEL|sha:PREFIX.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a prompt's versions and labels, or one version's messages, configuration and variables."""
    with client(url, api_key) as ph:
        if "@" not in ref:
            prompt = ph.get_prompt(ref)

            def render() -> None:
                table(
                    f"{prompt['name']}: versions",
                    ["version", "hash", "labels", "author", "created", "message"],
                    [
                        [
                            v["version"],
                            v["content_hash"][:12],
                            ", ".join(v["labels"]),
                            v["author"],
                            when(v["created_at"]),
                            v["message"],
                        ]
                        for v in prompt["versions"]
                    ],
                )
                console.print(Text(f"labels: {_labels({lbl['name']: lbl for lbl in prompt['labels']})}"))

            emit(as_json, prompt, render)
            return
        name, selector = _split(ref)
        version = ph.get_prompt_version(name, selector)
    emit(as_json, version, lambda: _print_version(version))


def _print_diff(text: str) -> None:
    for line in text.splitlines():
        style = None
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        console.print(Text(line, style=style or ""))


@prompt_app.command("diff")
def diff(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    old: Annotated[str, typer.Argument(help="From: a version, label or sha:PREFIX.")],
    new: Annotated[str, typer.Argument(help="To: a version, label or sha:PREFIX.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what changed between two versions: each message's text, the configuration and the variables."""
    with client(url, api_key) as ph:
        result = ph.diff_prompt(name, old, new)

    def render() -> None:
        if result["identical"]:
            console.print(f"{result['from']} and {result['to']} have the same content")
            return
        if result["type"]:
            console.print(f"type: {result['type']['from']} → {result['type']['to']}")
        for msg in result["messages"]:
            _print_diff(msg["diff"])
        if result["text"]:
            _print_diff(result["text"])
        if result["description"]:
            console.print(Text(f"description: {result['description']['from']!r} → {result['description']['to']!r}"))
        for title, key, items in (
            ("Configuration changes", "key", result["config"]),
            ("Variable changes", "name", result["variables"]),
        ):
            if items:
                rows = [[c[key], json.dumps(c["from"]), json.dumps(c["to"])] for c in items]
                table(title, [key, "from", "to"], rows)

    emit(as_json, result, render)


# -- labels -----------------------------------------------------------------------------------------------------
@prompt_app.command("label")
def label(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    version: Annotated[int, typer.Argument(help="The version the label should point at.")],
    label_name: Annotated[str, typer.Argument(metavar="LABEL", help="e.g. staging, production.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point a label at a version: an instant rollout or rollback (protected labels need an admin key;
    for gated moves use `pilothouse prompt promote`)."""
    with client(url, api_key) as ph:
        result = ph.set_label(name, label_name, version, reason=reason)
    emit(as_json, result, lambda: console.print(f"{name}@{label_name} → version {result['version']}"))


@prompt_app.command("protect")
def protect(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    label_name: Annotated[str, typer.Argument(metavar="LABEL", help="The label, e.g. production.")],
    off: Annotated[bool, typer.Option("--off", help="Lift the protection instead.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Protect a label so only admin keys can move it (admin only); --off lifts it."""
    with client(url, api_key) as ph:
        result = ph.protect_label(name, label_name, not off)
    state = "protected" if result["protected"] else "no longer protected"
    emit(as_json, result, lambda: console.print(f"{name}@{label_name} is {state}"))


# -- render -----------------------------------------------------------------------------------------------------
def coerce(spec: dict[str, Any] | None, name: str, raw: str) -> Any:
    """A `--var` value as the variable's schema type (strings as given; others parsed)."""
    kind = (spec or {}).get("type", "string")
    try:
        if kind == "string":
            return raw
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw) if any(c in raw for c in ".eE") else int(raw)
        if kind == "boolean":
            lowered = raw.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        return json.loads(raw)
    except ValueError:
        raise _fail(f"--var {name}={raw}: not {'an' if kind[0] in 'aio' else 'a'} {kind}") from None


@prompt_app.command("render")
def render_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION|LABEL|sha:PREFIX (NAME alone: production).")],
    var: Annotated[list[str] | None, typer.Option("--var", help="A variable, NAME=VALUE (repeatable).")] = None,
    vars_json: Annotated[str | None, typer.Option("--vars", help="Variables as a JSON object.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Preview the messages a version renders to (no model is called)."""
    name, selector = _split(ref)
    variables: dict[str, Any] = {}
    if vars_json:
        try:
            loaded = json.loads(vars_json)
        except ValueError as exc:
            raise _fail(f"--vars is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise _fail("--vars must be a JSON object")
        variables.update(loaded)
    with client(url, api_key) as ph:
        if var:
            schema = ph.get_prompt_version(name, selector)["variables"]
            for item in var:
                key, sep, value = item.partition("=")
                if not sep:
                    raise _fail(f"--var {item!r}: expected NAME=VALUE")
                variables[key] = coerce(schema.get(key), key, value)
        result = ph.render_prompt(name, selector, variables)

    def render() -> None:
        console.print(Text(f"{result['name']}@{result['version']}", style="bold"))
        for msg in result["messages"]:
            console.print(Text(f"── {msg['role']}", style="bold cyan"))
            console.print(Text(msg["content"]))

    emit(as_json, result, render)
