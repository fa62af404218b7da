"""`pilothouse dataset`: evaluation datasets as files: push, pull, list, show, add items from traces, split.

Files are JSONL (lossless) or CSV (docs/datasets.md#files); they are validated here, before anything is sent, so a
bad line is reported with its number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table, when

dataset_app = typer.Typer(help="Evaluation datasets: versioned items (input, expected, context).", no_args_is_help=True)

NameOpt = Annotated[str, typer.Option("--name", "-n", help="The dataset's name.")]
NameArg = Annotated[str, typer.Argument(help="The dataset's name.")]
VersionOpt = Annotated[int | None, typer.Option(help="A version (default: the latest).", min=1)]
FormatOpt = Annotated[str | None, typer.Option("--format", help="jsonl or csv (default: from the file name).")]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(1)


def _pushed_text(result: dict[str, Any]) -> str:
    latest = result["latest"]
    if not result["created"]:
        return f"{result['name']} unchanged at version {latest['version']} ({latest['item_count']} items)"
    splits = ", ".join(f"{k} {v}" for k, v in sorted(latest["splits"].items()))
    tail = f"; splits: {splits}" if splits else ""
    return f"pushed {result['name']} version {latest['version']} ({latest['item_count']} items{tail})"


@dataset_app.command("push")
def push(
    file: Annotated[Path, typer.Argument(help="Items: a .jsonl or .csv file.")],
    name: NameOpt,
    append: Annotated[bool, typer.Option(help="Add to the latest version's items instead of replacing them.")] = False,
    message: Annotated[str | None, typer.Option("--message", "-m", help="What changed.")] = None,
    description: Annotated[str | None, typer.Option(help="What the dataset is for.")] = None,
    file_format: FormatOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a file's items as the dataset's next version (developer role); no version when nothing changed."""
    from pilothouse.datasets.files import load_file
    from pilothouse.datasets.items import ItemError

    try:
        items = load_file(file, file_format)
    except ItemError as exc:
        raise _fail(f"{file}: {exc}") from None
    if not items:
        raise _fail(f"{file}: no items")
    with client(url, api_key) as ph:
        result = ph.push_dataset(
            name, items, mode="append" if append else "replace", message=message, description=description
        )
    emit(as_json, result, lambda: console.print(_pushed_text(result), highlight=False, markup=False))


@dataset_app.command("pull")
def pull(
    name: NameArg,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here (.jsonl or .csv); default: stdout.")
    ] = None,
    version: VersionOpt = None,
    split: Annotated[str | None, typer.Option(help="Only this split's items.")] = None,
    file_format: FormatOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Write a version's items as JSONL (default) or CSV; `push` of the file gives back the same version."""
    from pilothouse.datasets.files import dump_csv, dump_jsonl
    from pilothouse.datasets.items import ItemError

    fmt = (file_format or (out.suffix.lstrip(".") if out else "jsonl")).lower()
    if fmt not in ("jsonl", "csv"):
        raise _fail(f"unknown format {fmt!r}: use jsonl or csv")
    with client(url, api_key) as ph:
        items = list(ph.dataset_items(name, version=version, split=split))
    try:
        text = dump_csv(items) if fmt == "csv" else dump_jsonl(items)
    except ItemError as exc:
        raise _fail(str(exc)) from None
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    err_console.print(f"wrote {len(items)} items to {out}", highlight=False)


@dataset_app.command("list")
def list_datasets(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The project's datasets with their latest versions."""
    with client(url, api_key) as ph:
        found = ph.list_datasets()
    rows = [
        [
            d["name"],
            str(d["latest"]["version"]),
            str(d["latest"]["item_count"]),
            when(d["updated_at"]),
            d["description"] or "",
        ]
        for d in found
    ]
    emit(as_json, found, lambda: table("Datasets", ["name", "version", "items", "updated (UTC)", "description"], rows))


@dataset_app.command("show")
def show(name: NameArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """A dataset's versions, newest first, with item counts and splits."""
    with client(url, api_key) as ph:
        versions = ph.dataset_versions(name)
    rows = [
        [
            str(v["version"]),
            str(v["item_count"]),
            ", ".join(f"{k} {n}" for k, n in sorted(v["splits"].items())),
            when(v["created_at"]),
            v["author"] or "",
            v["message"] or "",
        ]
        for v in versions
    ]
    emit(as_json, versions, lambda: table(name, ["version", "items", "splits", "created (UTC)", "by", "message"], rows))


@dataset_app.command("add-from-traces")
def add_from_traces(
    name: NameArg,
    since: Annotated[str | None, typer.Option(help="Start time: 7d, 24h, epoch seconds or ISO 8601.")] = None,
    until: Annotated[str | None, typer.Option(help="End time.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    prompt: Annotated[str | None, typer.Option(help="Only calls of this prompt.")] = None,
    prompt_version: Annotated[int | None, typer.Option(help="Only this version of --prompt.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only traces with this tag.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this end user.")] = None,
    status: Annotated[str | None, typer.Option(help="ok or error.")] = None,
    score: Annotated[str | None, typer.Option(help="A score compared, e.g. 'groundedness<0.5'.")] = None,
    q: Annotated[str | None, typer.Option("--q", "--search", help="Words the kept content must contain.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="The newest matching traces, at most.")] = 100,
    split: Annotated[str | None, typer.Option(help="Put the new items in this split.")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="What changed.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add items made from production traces (input, the answer as `expected` to review, retrieved context) as a
    new version; the dataset is created if needed. Traces whose content was not kept are skipped and counted."""
    filters = {
        "since": since,
        "until": until,
        "model": model,
        "prompt": prompt,
        "prompt_version": prompt_version,
        "tag": tag,
        "user": user,
        "status": status,
        "score": score,
        "q": q,
        "limit": limit,
        "split": split,
        "message": message,
    }
    with client(url, api_key) as ph:
        result = ph.add_dataset_items_from_traces(name, **filters)

    def render() -> None:
        console.print(f"added {result['added']} items; " + _pushed_text(result), highlight=False, markup=False)
        for reason, count in sorted(result["skipped"].items()):
            console.print(f"skipped {count} traces: {reason}", highlight=False, markup=False)

    emit(as_json, result, render)


@dataset_app.command("split")
def split(
    name: NameArg,
    fractions: Annotated[str, typer.Option(help="NAME=FRACTION pairs summing to 1, e.g. train=0.8,test=0.2.")],
    seed: Annotated[int, typer.Option(min=0, help="Another seed gives another split.")] = 0,
    message: Annotated[str | None, typer.Option("--message", "-m", help="What changed.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A new version with every item in a split, by a seeded hash of its id (the same item stays in the same
    split in later versions)."""
    from pilothouse.datasets.items import ItemError
    from pilothouse.datasets.splits import parse_fractions

    try:
        parsed = parse_fractions(fractions)
    except ItemError as exc:
        raise _fail(str(exc)) from None
    with client(url, api_key) as ph:
        result = ph.split_dataset(name, parsed, seed=seed, message=message)
    emit(as_json, result, lambda: console.print(_pushed_text(result), highlight=False, markup=False))
