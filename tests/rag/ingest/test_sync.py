"""Incremental re-indexing and freshness: ingest a folder, change one file and delete another, then the stale
listing names exactly those two and a sync re-embeds exactly the changed one and removes the deleted one, from
the store and from the index."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from pilothouse.rag.freshness import stale_documents, sync
from pilothouse.store import rag as repo
from tests.rag.ingest.conftest import Rag

DOCS = {
    "alpha.md": "# Alpha\n\nThe alpha reactor cools with heavy water.\n\n## Safety\n\nOperators wear dosimeters.",
    "beta.txt": "Beta notes.\n\nThe beta team ships on Fridays and reviews on Mondays.",
    "gamma.html": "<html><head><title>Gamma</title></head><body><h1>Gamma</h1><p>Gamma rays are photons.</p>"
    "<p style='display:none'>hidden text</p></body></html>",
    "records.jsonl": '{"id": "r1", "text": "Record one is about tea."}\n'
    '{"id": "r2", "text": "Record two is about coffee.", "groups": ["baristas"]}\n',
}


def _write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")


def _bump(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    later = time.time() + 5
    os.utime(path, (later, later))


def test_change_one_delete_one_then_sync(rag: Rag, tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    _write(folder)
    collection = rag.collection()
    ingestor = rag.ingestor(collection)
    first = ingestor.ingest_folder(folder)
    assert sorted(Path(s.split("#")[0]).name + ("#" + s.split("#")[1] if "#" in s else "") for s in first.added) == [
        "alpha.md",
        "beta.txt",
        "gamma.html",
        "records.jsonl#r1",
        "records.jsonl#r2",
    ]
    assert first.chunks_embedded == first.chunks_written > 0
    held = len(ingestor.index)
    assert held == first.chunks_written
    assert stale_documents(rag.store, collection) == []

    # An unchanged second pass reads nothing and embeds nothing.
    rag.embedder.calls.clear()
    again = ingestor.ingest_folder(folder)
    assert (again.added, again.updated, again.removed, again.unchanged) == ([], [], [], 5)
    assert rag.embedder.calls == []

    # A touched file with the same contents is not stale and not re-embedded.
    later = time.time() + 3
    os.utime(folder / "beta.txt", (later, later))
    assert stale_documents(rag.store, collection) == []

    _bump(folder / "alpha.md", DOCS["alpha.md"] + "\n\nA new paragraph about coolant pumps and their valves.")
    (folder / "gamma.html").unlink()
    stale = {Path(s.document.source).name: s.reason for s in stale_documents(rag.store, collection)}
    assert stale == {"alpha.md": "changed", "gamma.html": "missing"}

    rag.embedder.calls.clear()
    with rag.store.connect() as conn:
        collection = repo.get_collection_by_id(conn, collection.id) or collection  # with its remembered folder
    report = sync(rag.store, collection, ingestor.index, rag.ingestor(collection))
    assert [Path(s).name for s in report.updated] == ["alpha.md"]
    assert [Path(s).name for s in report.removed] == ["gamma.html"]
    assert report.added == [] and report.unchanged == 3
    # Exactly one document re-embedded: every embedded text is a chunk of the new alpha.md, and only the
    # chunk whose text changed was embedded (the unchanged heading section reused its stored vector).
    with rag.store.connect() as conn:
        alpha = repo.get_document(conn, collection.id, str((folder / "alpha.md").resolve()))
        assert alpha is not None and alpha.version == 2
        alpha_texts = {c.text for c in repo.iter_chunks(conn, collection.id) if c.document_id == alpha.id}
        assert repo.get_document(conn, collection.id, str((folder / "gamma.html").resolve())) is None
        assert len(repo.document_versions(conn, alpha.id)) == 2
    assert rag.embedder.calls and set(rag.embedder.embedded()) <= alpha_texts
    assert report.chunks_embedded == 1 and report.chunks_reused >= 1
    # The index holds exactly the store's chunks: gamma's are gone from it.
    index = rag.index(collection)
    with rag.store.connect() as conn:
        assert len(index) == repo.count_chunks(conn, collection.id, indexable=True)
    hits = index.keyword("gamma photons", k=5)
    assert all("gamma" not in str(h.metadata.get("_source")) for h in hits)
    assert stale_documents(rag.store, collection) == []


def test_ttl_makes_documents_stale_and_sync_rechecks_them(rag_lite: Rag, tmp_path: Path) -> None:
    rag = rag_lite
    folder = tmp_path / "corpus"
    _write(folder)
    collection = rag.collection(ttl_days=1.0)
    ingestor = rag.ingestor(collection)
    ingestor.ingest_folder(folder)
    now = time.time()
    assert stale_documents(rag.store, collection, now=now) == []
    later = stale_documents(rag.store, collection, now=now + 2 * 86400)
    assert {s.reason for s in later} == {"ttl"} and len(later) == 5
    # Nothing changed, so a sync after the TTL re-reads the files, embeds nothing and refreshes `indexed_at`.
    with rag.store.connect() as conn:
        for doc in repo.list_documents(conn, collection.id):
            assert doc.indexed_at <= now
    rag.embedder.calls.clear()
    with rag.store.connect() as conn:
        collection = repo.get_collection_by_id(conn, collection.id) or collection
    report = sync(rag.store, collection, ingestor.index, rag.ingestor(collection))
    assert report.unchanged == 5 and not report.changed and rag.embedder.calls == []


def test_vectors_in_store_are_the_embeddings_and_metadata_is_complete(rag_lite: Rag, tmp_path: Path) -> None:
    rag = rag_lite
    folder = tmp_path / "corpus"
    _write(folder)
    collection = rag.collection()
    rag.ingestor(collection).ingest_folder(folder)
    with rag.store.connect() as conn:
        chunks = list(repo.iter_chunks(conn, collection.id))
    alpha = [c for c in chunks if c.meta["_source"].endswith("alpha.md")]
    assert [c.meta["_headings"] for c in alpha] == [["Alpha"], ["Alpha", "Safety"]]
    assert alpha[0].meta["_title"] == "Alpha" and alpha[0].meta["_acl"] == ["*"]
    coffee = next(c for c in chunks if c.meta["_source"].endswith("#r2"))
    assert coffee.meta["_acl"] == ["g:baristas"]
    assert all("hidden text" not in c.text for c in chunks)
    expected = rag.embedder.inner.embed([alpha[1].text])[0]
    assert np.allclose(alpha[1].vector, expected, atol=1e-5)
    for c in chunks:
        assert set(c.meta) >= {"_acl", "_document", "_version", "_source", "_title", "_headings", "_position"}
        assert set(c.meta) >= {"_indexed_at", "_modified_at", "_flags"}
