"""`pilothouse rag query` and `pilothouse rag eval`: retrieval from a collection, and retrieval quality on a
labelled set (docs/rag-retrieval.md). Both call the server (`POST /api/rag/{collection}/query`), so they see
what the key (and the end user it names) may read.

`eval` reads queries and relevance judgements, runs every configuration over every query and prints nDCG@10,
MRR and recall@k per configuration in one table. Relevance is judged per document: a hit counts by its source
(the record id, or the file path as ingested), the first chunk of a document ranking it. Inputs:
- `--queries FILE.jsonl` with lines `{"id": "q1", "query": "...", "relevant": ["doc-a", "doc-b"]}`, or
- `--smart-queries CISI.QRY --qrels CISI.REL` (the SMART format of the classic test collections; the documents
  ingested as records whose id is the SMART document number).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table
from pilothouse.cli.rag import CollectionArg, rag_app

if TYPE_CHECKING:
    from pilothouse.rag.evaluation import Qrels

DEFAULT_CONFIGS = ("keyword", "dense", "hybrid")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _json_option(raw: str | None, what: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(f"{what} is not valid JSON: {exc.msg}", 2) from None
    if not isinstance(value, dict):
        raise _fail(f"{what} must be a JSON object", 2)
    return value


@rag_app.command("query")
def query(
    collection: CollectionArg,
    text: Annotated[str, typer.Argument(help="What to search for.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=100, help="How many chunks.")] = 5,
    mode: Annotated[str, typer.Option(help="dense, keyword or hybrid.")] = "hybrid",
    fusion: Annotated[str, typer.Option(help="Hybrid: rrf or weighted.")] = "rrf",
    filters: Annotated[
        str | None, typer.Option("--filter", help='Metadata filter as JSON: \'{"equals": {"team": "ops"}}\'.')
    ] = None,
    mmr: Annotated[float | None, typer.Option(help="MMR diversity trade-off (0..1).")] = None,
    min_score: Annotated[float | None, typer.Option(help="Drop hits scoring below this.")] = None,
    user: Annotated[str | None, typer.Option("--as-user", help="The end user to retrieve for (service keys).")] = None,
    groups: Annotated[
        list[str] | None, typer.Option("--as-group", help="The end user's groups (repeatable; service keys).")
    ] = None,
    pack: Annotated[int | None, typer.Option(help="Also pack the hits into this many tokens of context.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrieve the best chunks of a collection for a question."""
    where = _json_option(filters, "--filter")
    options: dict[str, Any] = {"fusion": fusion}
    if mmr is not None:
        options["mmr_lambda"] = mmr
    if min_score is not None:
        options["min_score"] = min_score
    with client(url, api_key) as ph:
        found = ph.rag.query(
            collection, text, k=k, mode=mode, filters=where, user=user, groups=groups, pack_tokens=pack, **options
        )

    def render() -> None:
        rows = [
            [
                i,
                f"{h['score']:.4f}",
                h.get("source") or h.get("document"),
                ",".join(h.get("flags") or []) or None,
                " ".join(str(h["text"]).split())[:100],
            ]
            for i, h in enumerate(found["hits"], start=1)
        ]
        table(
            f"{collection}: {text} ({found['mode']}, trace {found['trace_id']})",
            ["#", "score", "source", "flags", "text"],
            rows,
        )
        if "packed" in found:
            packed = found["packed"]
            console.print(
                f"packed {len(packed['citations'])} chunks, {packed['tokens']} of {packed['budget']} tokens; "
                f"dropped {len(packed['dropped'])}",
                highlight=False,
                markup=False,
            )

    emit(as_json, found, render)


def _read_jsonl_queries(path: Path) -> tuple[dict[str, str], Qrels]:
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(f"{path}:{number}: not JSON ({exc.msg})", 2) from None
        if not isinstance(row, dict) or not isinstance(row.get("query"), str) or "id" not in row:
            raise _fail(f'{path}:{number}: expected {{"id", "query", "relevant": [...]}}', 2)
        relevant = row.get("relevant") or []
        if not isinstance(relevant, list) or not all(isinstance(r, str) for r in relevant):
            raise _fail(f"{path}:{number}: `relevant` must be a list of document sources", 2)
        qid = str(row["id"])
        queries[qid] = row["query"]
        qrels[qid] = dict.fromkeys(relevant, 1)
    return queries, qrels


def _load_set(
    queries_file: Path | None, smart_queries: Path | None, qrels_file: Path | None
) -> tuple[dict[str, str], Qrels]:
    from pilothouse.rag.evaluation import read_qrels, read_smart

    if (queries_file is None) == (smart_queries is None):
        raise _fail("give either --queries FILE.jsonl or --smart-queries FILE with --qrels FILE", 2)
    try:
        if queries_file is not None:
            return _read_jsonl_queries(queries_file)
        if qrels_file is None:
            raise _fail("--smart-queries needs --qrels (the relevance judgements)", 2)
        assert smart_queries is not None
        qrels = read_qrels(qrels_file)
        queries = {q.id: q.text for q in read_smart(smart_queries) if q.id in qrels}
        return queries, qrels
    except (OSError, ValueError) as exc:
        raise _fail(str(exc), 2) from None


def _configs(raw: list[str] | None) -> dict[str, dict[str, Any]]:
    """`NAME` (a mode) or `NAME=JSON` (request options), in the order given."""
    out: dict[str, dict[str, Any]] = {}
    for item in raw or list(DEFAULT_CONFIGS):
        name, sep, options = item.partition("=")
        parsed = _json_option(options, f"--config {name}") if sep else {"mode": name}
        out[name] = parsed or {}
    return out


@rag_app.command("eval")
def evaluate(
    collection: CollectionArg,
    queries_file: Annotated[
        Path | None, typer.Option("--queries", help='JSONL: {"id", "query", "relevant": [sources]} per line.')
    ] = None,
    smart_queries: Annotated[Path | None, typer.Option(help="Queries in SMART format (e.g. CISI.QRY).")] = None,
    qrels_file: Annotated[Path | None, typer.Option("--qrels", help="Relevance judgements (e.g. CISI.REL).")] = None,
    configs: Annotated[
        list[str] | None,
        typer.Option(
            "--config",
            help="A configuration: a mode (dense, keyword, hybrid) or NAME=JSON of query options, e.g. "
            '\'tuned={"mode": "hybrid", "rrf_k": 10, "weights": {"dense": 2, "keyword": 1}}\' (repeatable; '
            "default: keyword, dense, hybrid).",
        ),
    ] = None,
    depth: Annotated[int, typer.Option(min=10, max=100, help="Chunks retrieved per query (recall@depth).")] = 100,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N queries.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrieval quality on a labelled set: nDCG@10, MRR and recall@10/@depth for each configuration."""
    from rich.progress import Progress

    from pilothouse.rag.evaluation import score_run

    queries, qrels = _load_set(queries_file, smart_queries, qrels_file)
    if limit is not None:
        keep = list(queries)[:limit]
        queries = {q: queries[q] for q in keep}
    qrels = {q: qrels.get(q, {}) for q in queries}
    if not any(qrels.values()):
        raise _fail("no query has a relevant document: nothing to score", 2)
    chosen = _configs(configs)
    results: dict[str, dict[str, Any]] = {}
    with client(url, api_key) as ph, Progress(console=err_console, transient=True) as progress:
        for name, options in chosen.items():
            task = progress.add_task(f"{name}", total=len(queries))
            run: dict[str, list[str]] = {}
            for qid, text in queries.items():
                body = {"k": depth, "candidates": max(depth, int(options.get("candidates", depth))), **options}
                body.pop("query", None)
                found = ph.rag.query(collection, text, **body)
                run[qid] = [str(h.get("source") or h.get("document")) for h in found["hits"]]
                progress.advance(task)
            results[name] = {"options": options, **score_run(run, qrels, recall_ks=(10, depth)).to_json()}
    report = {"collection": collection, "queries": len(queries), "depth": depth, "configs": results}

    def render() -> None:
        ks = sorted({10, depth})
        rows = [
            [name, r["queries"], f"{r['ndcg@10']:.4f}", f"{r['mrr']:.4f}", *(f"{r[f'recall@{k}']:.4f}" for k in ks)]
            for name, r in results.items()
        ]
        columns = ["config", "judged", "nDCG@10", "MRR", *(f"recall@{k}" for k in ks)]
        table(f"{collection}: {len(queries)} queries", columns, rows)

    emit(as_json, report, render)
