"""`pilothouse rag`: RAG collections: create, ingest folders and files, status (stale documents), sync, documents,
re-embed (docs/rag.md).

Files are read where the command runs: `ingest` and `sync` walk the folder here, skip files whose modification
time did not change, load the others (text, Markdown, HTML, PDF, JSONL) into sections and send them to the server,
which chunks, scans, embeds what is new and indexes it; files gone from the folder are removed. `status` checks
the listed documents' files here too. Progress bars show the scan and the upload; a summary says what changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table, when

if TYPE_CHECKING:
    from pilothouse.rag.loaders import LoadedDocument
    from pilothouse.sdk.client import Pilothouse

rag_app = typer.Typer(
    help="RAG collections: ingest, freshness (status, sync), documents, re-embed.", no_args_is_help=True
)

CollectionArg = Annotated[str, typer.Argument(help="The collection's name.")]
GroupOpt = Annotated[list[str] | None, typer.Option("--group", "-g", help="A group that may read (repeatable).")]
UserOpt = Annotated[list[str] | None, typer.Option("--user", "-u", help="A user who may read (repeatable).")]

BATCH_DOCUMENTS = 32
BATCH_BYTES = 2 * 1024 * 1024
INGEST_TIMEOUT_S = 900.0


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _base(name: str) -> str:
    return f"/api/rag/collections/{name}"


@rag_app.command("collections")
def collections(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The project's collections: model, index, documents, chunks."""
    with client(url, api_key) as ph:
        found: list[dict[str, Any]] = ph.request("GET", "/api/rag/collections")
    rows = [
        [
            c["name"],
            c["embedding_model"],
            c["index_kind"],
            c["documents"],
            c["quarantined"],
            c["chunks"],
            when(c["updated_at"]),
        ]
        for c in found
    ]
    columns = ["name", "model", "index", "documents", "quarantined", "chunks", "updated (UTC)"]
    emit(as_json, found, lambda: table("RAG collections", columns, rows))


@rag_app.command("create")
def create(
    name: CollectionArg,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Embedding model, fixed for good (default: the server's, all-MiniLM-L6-v2-int8; "
            "all-MiniLM-L6-v2 for the float32 model).",
        ),
    ] = None,
    index: Annotated[str, typer.Option(help="auto, exact, hnsw or milvus.")] = "auto",
    index_uri: Annotated[str | None, typer.Option(help="Milvus URI or milvus-lite file (index milvus).")] = None,
    chunk_tokens: Annotated[int, typer.Option(help="Chunk size in the model's tokens.", min=16)] = 200,
    overlap_tokens: Annotated[int, typer.Option(help="Tokens consecutive chunks share.", min=0)] = 40,
    injection: Annotated[str, typer.Option(help="Prompt injection found at ingestion: flag, quarantine or off.")] = (
        "flag"
    ),
    pii: Annotated[str, typer.Option(help="redact: mask personal data before indexing; off.")] = "off",
    ttl_days: Annotated[float | None, typer.Option(help="Documents are stale after this many days.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a collection (developer role)."""
    settings: dict[str, Any] = {
        "chunk_tokens": chunk_tokens,
        "overlap_tokens": overlap_tokens,
        "injection": injection,
        "pii": pii,
        "ttl_days": ttl_days,
    }
    body = {"name": name, "index": index, "index_uri": index_uri, "settings": settings}
    if model is not None:
        body["embedding_model"] = model
    with client(url, api_key) as ph:
        made = ph.request("POST", "/api/rag/collections", json=body)
    emit(
        as_json,
        made,
        lambda: console.print(
            f"created {made['name']} ({made['embedding_model']}, {made['dimensions']} dimensions, index "
            f"{made['index_kind']})",
            highlight=False,
            markup=False,
        ),
    )


def _document_json(document: LoadedDocument, mtime: float | None) -> dict[str, Any]:
    return {
        "source": document.source,
        "title": document.title,
        "sections": [{"text": s.text, "headings": list(s.headings), "page": s.page} for s in document.sections],
        "metadata": document.metadata,
        "groups": list(document.groups),
        "users": list(document.users),
        "mtime": mtime,
    }


def _batches(items: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    import orjson

    batch: list[dict[str, Any]] = []
    size = 0
    for item in items:
        n = len(orjson.dumps(item))
        if batch and (len(batch) >= BATCH_DOCUMENTS or size + n > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


class _Summary:
    def __init__(self) -> None:
        self.totals: dict[str, Any] = {
            "added": [],
            "updated": [],
            "unchanged": 0,
            "removed": [],
            "quarantined": [],
            "flagged": [],
            "errors": [],
            "chunks_written": 0,
            "chunks_embedded": 0,
            "chunks_reused": 0,
        }

    def add(self, part: dict[str, Any]) -> None:
        for key, value in part.items():
            if key in self.totals:
                self.totals[key] = self.totals[key] + value

    def error(self, source: str, message: str) -> None:
        self.totals["errors"].append({"source": source, "error": message})

    def print(self) -> None:
        t = self.totals
        console.print(
            f"added {len(t['added'])}, updated {len(t['updated'])}, unchanged {t['unchanged']}, removed "
            f"{len(t['removed'])}; chunks written {t['chunks_written']} (embedded {t['chunks_embedded']}, reused "
            f"{t['chunks_reused']})",
            highlight=False,
            markup=False,
        )
        for label in ("added", "updated", "removed"):
            for source in t[label]:
                console.print(f"  {label:8} {source}", highlight=False, markup=False)
        for source in t["flagged"]:
            console.print(f"  [yellow]flagged[/yellow]  {source} (prompt injection; flag kept with its chunks)")
        for source in t["quarantined"]:
            console.print(f"  [red]quarantined[/red] {source} (prompt injection; kept out of the index)")
        for err in t["errors"]:
            err_console.print(f"  [red]error[/red] {err['source']}: {err['error']}", highlight=False)


def _send_folder(
    ph: Pilothouse,
    name: str,
    folder: Path,
    access: dict[str, list[str]],
    summary: _Summary,
    *,
    recheck: set[str] | None = None,
    previous: dict[str, Any] | None = None,
) -> None:
    """Plan `folder` against what the collection holds from it and send the changes, with progress bars."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pilothouse.rag.folders import folder_root, plan_folder
    from pilothouse.rag.loaders import LoaderError
    from pilothouse.store.rag import DocumentRow

    try:
        root = folder_root(folder)
    except LoaderError as exc:
        raise _fail(str(exc)) from None
    listed = ph.request("GET", f"{_base(name)}/documents", params={"prefix": str(root) + "/"})
    known = [DocumentRow.from_dict(d) for d in listed]
    reread = previous is not None and previous != access
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        scan = progress.add_task(f"reading {root}", total=None)
        plan = plan_folder(
            root,
            known,
            reread=reread,
            recheck=recheck or (),
            progress=lambda done, total: progress.update(scan, completed=done, total=total),
        )
        documents = [_document_json(d, mtime) for d, mtime in plan.load]
        send = progress.add_task("indexing", total=len(documents))
        batches = list(_batches(documents))
        if not batches and plan.gone:
            batches = [[]]
        for number, batch in enumerate(batches):
            body = {
                "documents": batch,
                "access": access,
                "folder": str(root),
                "remove": plan.gone if number == len(batches) - 1 else [],
            }
            summary.add(ph.request("POST", f"{_base(name)}/documents", json=body, timeout=INGEST_TIMEOUT_S))
            progress.advance(send, len(batch))
        if not batches:  # nothing changed: still remember the folder for sync
            body = {"documents": [], "access": access, "folder": str(root), "remove": []}
            summary.add(ph.request("POST", f"{_base(name)}/documents", json=body, timeout=INGEST_TIMEOUT_S))
    summary.totals["unchanged"] += plan.unchanged
    for source, message in plan.errors:
        summary.error(source, message)


def _send_files(ph: Pilothouse, name: str, files: list[Path], access: dict[str, list[str]], summary: _Summary) -> None:
    from pilothouse.rag.loaders import LoaderError, load_path

    documents: list[dict[str, Any]] = []
    for path in files:
        resolved = path.expanduser().resolve()
        try:
            loaded = load_path(resolved, source=str(resolved))
            mtime = resolved.stat().st_mtime
        except (LoaderError, OSError) as exc:
            summary.error(str(path), str(exc))
            continue
        documents.extend(_document_json(d, mtime) for d in loaded)
    for batch in _batches(documents):
        body = {"documents": batch, "access": access, "files": True}
        summary.add(ph.request("POST", f"{_base(name)}/documents", json=body, timeout=INGEST_TIMEOUT_S))


@rag_app.command("ingest")
def ingest(
    collection: CollectionArg,
    paths: Annotated[list[Path], typer.Argument(help="Folders (walked recursively) and files.")],
    group: GroupOpt = None,
    user: UserOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index folders and files (developer role): new and changed documents are embedded, unchanged ones skipped,
    documents of files gone from a folder removed. Without --group/--user everyone in the project may read them;
    a JSONL record's own `groups`/`users` take precedence. Folders are remembered for `sync`."""
    access = {"groups": sorted(set(group or [])), "users": sorted(set(user or []))}
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise _fail(f"no such file or folder: {', '.join(missing)}", 2)
    summary = _Summary()
    with client(url, api_key) as ph:
        ph.request("GET", _base(collection))  # a missing collection fails before any file is read
        files = [p for p in paths if not p.is_dir()]
        for folder in (p for p in paths if p.is_dir()):
            _send_folder(ph, collection, folder, access, summary)
        if files:
            _send_files(ph, collection, files, access, summary)
    emit(as_json, summary.totals, summary.print)
    if summary.totals["errors"]:
        raise typer.Exit(1)


@rag_app.command("sync")
def sync(collection: CollectionArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Bring a collection up to date with the folders it was ingested from: new, changed and deleted files,
    and documents whose TTL passed (read again; re-embedded only if they changed)."""
    summary = _Summary()
    with client(url, api_key) as ph:
        info = ph.request("GET", _base(collection))
        sources = info["settings"].get("sources", [])
        if not sources:
            raise _fail(f"collection {collection!r} has no folders to sync: ingest one with `pilothouse rag ingest`")
        ttl = {s["source"] for s in ph.request("GET", f"{_base(collection)}/stale") if s["reason"] == "ttl"}
        for source in sources:
            folder = Path(source["path"])
            access = {"groups": source["acl"]["groups"], "users": source["acl"]["users"]}
            if folder.is_dir():
                _send_folder(ph, collection, folder, access, summary, recheck=ttl, previous=access)
                continue
            listed = ph.request("GET", f"{_base(collection)}/documents", params={"prefix": str(folder) + "/"})
            gone = [d["source"] for d in listed]
            if gone:
                body = {"documents": [], "remove": gone}
                summary.add(ph.request("POST", f"{_base(collection)}/documents", json=body, timeout=INGEST_TIMEOUT_S))
            summary.error(str(folder), "the folder no longer exists here; its documents were removed")
    emit(as_json, summary.totals, summary.print)


@rag_app.command("status")
def status(collection: CollectionArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Stale documents: source file changed or missing (checked here), or TTL passed."""
    from pilothouse.rag.freshness import stale_among
    from pilothouse.rag.settings import CollectionSettings
    from pilothouse.store.rag import DocumentRow

    with client(url, api_key) as ph:
        info = ph.request("GET", _base(collection))
        listed = ph.request("GET", f"{_base(collection)}/documents")
    settings = CollectionSettings.from_json(info["settings"])
    stale = [s.to_dict() for s in stale_among([DocumentRow.from_dict(d) for d in listed], settings)]
    result = {"collection": collection, "documents": len(listed), "stale": stale}
    rows = [[s["source"], s["reason"], s["version"], when(s["indexed_at"])] for s in stale]

    def render() -> None:
        console.print(f"{collection}: {len(listed)} documents, {len(stale)} stale", highlight=False, markup=False)
        if stale:
            table("Stale documents", ["source", "reason", "version", "indexed (UTC)"], rows)
            console.print("run `pilothouse rag sync " + collection + "` to bring it up to date", markup=False)

    emit(as_json, result, render)


@rag_app.command("documents")
def documents(
    collection: CollectionArg,
    prefix: Annotated[str | None, typer.Option(help="Only sources starting with this.")] = None,
    quarantined: Annotated[bool, typer.Option("--quarantined", help="Only quarantined documents.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A collection's documents: version, chunks, flags, access, when indexed."""
    params: dict[str, str] = {}
    if prefix:
        params["prefix"] = prefix
    if quarantined:
        params["status"] = "quarantined"
    with client(url, api_key) as ph:
        listed = ph.request("GET", f"{_base(collection)}/documents", params=params)
    rows = [
        [
            d["source"],
            d["version"],
            d["chunks"],
            d["status"],
            ",".join(d["flags"]) or "-",
            ",".join([f"g:{g}" for g in d["acl"]["groups"]] + [f"u:{u}" for u in d["acl"]["users"]]) or "project",
            when(d["indexed_at"]),
        ]
        for d in listed
    ]
    columns = ["source", "version", "chunks", "status", "flags", "access", "indexed (UTC)"]
    emit(as_json, listed, lambda: table(f"Documents of {collection}", columns, rows))


@rag_app.command("reembed")
def reembed(
    collection: CollectionArg,
    model: Annotated[str | None, typer.Option("--model", help="A new embedding model (default: the same).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed every chunk again (developer role), with a new model or the same one, and rebuild the index."""
    with client(url, api_key) as ph:
        info = ph.request("GET", _base(collection))
        with err_console.status(f"re-embedding {info['chunks']} chunks of {collection}"):
            body = {"embedding_model": model} if model else {}
            done = ph.request("POST", f"{_base(collection)}/reembed", json=body, timeout=INGEST_TIMEOUT_S)
    emit(
        as_json,
        done,
        lambda: console.print(
            f"re-embedded {done['chunks']} chunks of {collection} with {done['embedding_model']}",
            highlight=False,
            markup=False,
        ),
    )


@rag_app.command("delete")
def delete(
    collection: CollectionArg,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the documents and index go for good.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a collection with its documents, chunks and index (developer role)."""
    if not yes:
        raise _fail("deleting a collection cannot be undone: add --yes", 2)
    with client(url, api_key) as ph:
        done = ph.request("DELETE", _base(collection))
    emit(as_json, done, lambda: console.print(f"deleted {collection} ({done['chunks']} chunks)", highlight=False))


# `rag query` and `rag eval` (retrieval) live in their own module and register on `rag_app`.
from pilothouse.cli import rag_query as _rag_query  # noqa: E402, F401
