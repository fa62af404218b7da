"""Background embedding during ingestion: every distinct text embedded once across batches in flight, stored
vectors reused, errors surfacing where the batch is written; and an ingestion pipelined over many batches
stores exactly the embedder's vectors."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np
import pytest

from pilothouse.rag import ingest
from pilothouse.rag.embed_pipeline import VectorPipeline, text_hash
from pilothouse.vectors.protocol import FloatArray
from tests.rag.ingest.conftest import Rag


class LengthEmbedder:
    """A fake embedder for the pipeline's own logic: a text's vector encodes its length; calls are recorded."""

    model = "fake-length"
    dimensions = 4
    max_tokens = 100

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> FloatArray:
        with self._lock:
            self.calls.append(list(texts))
            self.threads.add(threading.current_thread().name)
        if self.fail_on in texts:
            raise RuntimeError(f"cannot embed {self.fail_on!r}")
        return np.array([[len(t), 1.0, 0.0, 0.0] for t in texts], dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def embedded(self) -> list[str]:
        return [t for call in self.calls for t in call]


def _vector(text: str) -> list[float]:
    return [float(len(text)), 1.0, 0.0, 0.0]


def test_texts_in_flight_are_embedded_once_and_stored_ones_are_reused() -> None:
    embedder = LengthEmbedder()
    stored = {text_hash("kept"): np.array([9, 9, 9, 9], dtype=np.float32)}
    looked_up: list[set[str]] = []

    def lookup(hashes: Iterable[str]) -> dict[str, FloatArray]:
        wanted = set(hashes)
        looked_up.append(wanted)
        return {h: v for h, v in stored.items() if h in wanted}

    first_texts = [f"text number {i}" for i in range(40)] + ["kept", "text number 0"]
    with VectorPipeline(embedder, lookup, workers=2) as pipeline:
        first, reused_first = pipeline.submit(first_texts)
        second, reused_second = pipeline.submit(["text number 3", "brand new", "kept"])
        assert reused_first == 2  # "kept" from the store, "text number 0" repeated
        assert reused_second == 2  # "text number 3" is being embedded for the first batch, "kept" is stored
        vectors = first.result()
        assert set(vectors) == {text_hash(t) for t in first_texts}
        assert vectors[text_hash("kept")].tolist() == [9, 9, 9, 9]
        for text in first_texts[:40]:
            assert vectors[text_hash(text)].tolist() == _vector(text)
        assert second.result()[text_hash("text number 3")].tolist() == _vector("text number 3")
        pipeline.written(first)
        pipeline.written(second)
        stored.update({text_hash("text number 3"): np.array([1, 2, 3, 4], dtype=np.float32)})
        third, reused_third = pipeline.submit(["text number 3"])  # written: found in the store now
        assert reused_third == 1 and third.result()[text_hash("text number 3")].tolist() == [1, 2, 3, 4]
    embedded = embedder.embedded()
    assert sorted(embedded) == sorted({*first_texts[:40], "brand new"})  # each distinct text once
    assert all(len(call) <= 16 for call in embedder.calls) and len(embedder.calls) >= 3
    assert all(name.startswith("rag-embed") for name in embedder.threads)
    assert text_hash("text number 3") not in looked_up[1]  # in flight: not looked up in the store again


def test_an_embedding_error_surfaces_where_the_batch_is_collected() -> None:
    embedder = LengthEmbedder(fail_on="bad text")
    with VectorPipeline(embedder, lambda hashes: {}, workers=2) as pipeline:
        good, _ = pipeline.submit(["fine", "also fine"])
        bad, _ = pipeline.submit(["bad text"])
        assert good.result()[text_hash("fine")].tolist() == _vector("fine")
        with pytest.raises(RuntimeError, match="cannot embed 'bad text'"):
            bad.result()


def test_ingestion_over_many_batches_stores_the_embedders_vectors(
    rag_lite: Rag, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches force the pipeline through many rounds; a paragraph shared by documents in different
    batches is embedded once; every stored vector is the embedder's vector of its text."""
    monkeypatch.setattr(ingest, "BATCH_DOCUMENTS", 3)
    rag = rag_lite
    shared = "The library catalogue lists every journal the department subscribes to."
    records = [{"id": f"d{i}", "text": f"Document {i} is about topic {i * 7}."} for i in range(10)]
    records += [{"id": "s1", "text": shared}, {"id": "s2", "text": shared}, {"id": "s3", "text": shared}]
    collection = rag.collection()
    report = rag.ingestor(collection).ingest_records(records)
    assert report.chunks_written == 13 and len(report.added) == 13
    assert report.chunks_embedded == 11 and report.chunks_reused == 2
    embedded = rag.embedder.embedded()
    assert sorted(embedded) == sorted({r["text"] for r in records})
    chunks = rag.store_chunks(collection.id)
    assert len(chunks) == 13
    expected = rag.embedder.inner.embed([c.text for c in chunks])
    np.testing.assert_allclose(np.stack([c.vector for c in chunks]), expected, atol=1e-5)
    index = rag.index(collection)
    query = rag.embedder.inner.embed(["Document 4 is about topic 28."])[0]
    assert index.dense(query, k=1)[0].metadata["_source"] == "d4"  # type: ignore[index]
