"""The RAG store (store/rag.py) on SQLite and PostgreSQL: collections with counts, document versions replacing
their chunks, chunk reads in the asked order, indexable chunks (quarantined documents left out), vectors reused
by text hash, deletes, and the generation that goes up on every change."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError

from pilothouse.rag.types import AccessList
from pilothouse.store import rag as repo
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project


def _vec(seed: int) -> np.ndarray:  # type: ignore[type-arg]
    v = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    return v / np.linalg.norm(v)


def _write(conn: object, collection_id: str, source: str, texts: list[str], status: str = "active") -> tuple:  # type: ignore[type-arg]
    return repo.write_document(
        conn,  # type: ignore[arg-type]
        collection_id=collection_id,
        source=source,
        title=source.upper(),
        content_hash=str(hash(tuple(texts))),
        acl=AccessList.of(groups=["a"]),
        meta={"lang": "en"},
        flags=["injection"] if status == "quarantined" else [],
        status=status,
        source_mtime=123.0,
        chunks=[(t, f"h-{t}", _vec(i), {"_acl": ["g:a"], "lang": "en"}) for i, t in enumerate(texts)],
    )


def test_collections_documents_versions_and_chunks(store: Store) -> None:
    with store.begin() as conn:
        project = create_project(conn, "rag-store")
        made = repo.create_collection(
            conn, project_id=project.id, name="kb", embedding_model="m", dimensions=8, settings={"pii": "off"}
        )
    with store.begin() as conn, pytest.raises(IntegrityError):
        repo.create_collection(conn, project_id=project.id, name="kb", embedding_model="m", dimensions=8)
    with store.begin() as conn:
        doc, old, records = _write(conn, made.id, "a.md", ["one", "two"])
        assert old == [] and doc.version == 1 and [r.position for r in records] == [0, 1]
        assert records[0].meta["_document"] == doc.id and records[0].meta["_version"] == 1
        _write(conn, made.id, "q.md", ["bad"], status="quarantined")
    with store.connect() as conn:
        generation = repo.collection_generation(conn, made.id)
        [summary] = repo.list_collections(conn, project.id)
        assert (summary.documents, summary.quarantined, summary.chunks) == (2, 1, 3)
        assert repo.count_chunks(conn, made.id, indexable=True) == 2
        assert {c.text for c in repo.iter_chunks(conn, made.id, indexable=True, batch=1)} == {"one", "two"}
        ids = [r.id for r in records]
        assert [c.id for c in repo.get_chunks(conn, made.id, [ids[1], "nope", ids[0]])] == [ids[1], ids[0]]
        assert np.allclose(repo.get_chunks(conn, made.id, [ids[0]])[0].vector, _vec(0))
        assert set(repo.vectors_by_text_hash(conn, made.id, ["h-one", "h-x"])) == {"h-one"}
        assert repo.get_collection(conn, project.id, "kb") == made

    with store.begin() as conn:
        doc2, old2, records2 = _write(conn, made.id, "a.md", ["one", "three"])
    assert doc2.id == doc.id and doc2.version == 2 and sorted(old2) == sorted(ids)
    with store.connect() as conn:
        assert [v["version"] for v in repo.document_versions(conn, doc.id)] == [1, 2]
        assert repo.get_chunks(conn, made.id, ids) == []
        assert repo.collection_generation(conn, made.id) == generation + 1
        assert [d.source for d in repo.list_documents(conn, made.id, status="quarantined")] == ["q.md"]
        assert [d.source for d in repo.list_documents(conn, made.id, prefix="a.")] == ["a.md"]
        listed = repo.list_documents(conn, made.id)
        assert repo.DocumentRow.from_dict(listed[0].to_dict(), made.id) == listed[0]

    with store.begin() as conn:
        removed = repo.delete_document(conn, doc.id)
    assert sorted(removed) == sorted(r.id for r in records2)
    with store.begin() as conn:
        assert repo.delete_collection(conn, made.id) == 1
    with store.connect() as conn:
        assert repo.get_collection(conn, project.id, "kb") is None
