"""Retrieval through a real server (`pilothouse up`, the bundled local models): the query route with the SDK,
identities by key role, RAG chat through the gateway with the OpenAI client, and the retrieval span in the
answer's trace."""

from __future__ import annotations

import secrets

import httpx
import pytest
from openai import OpenAI

from pilothouse.sdk.client import Pilothouse, PilothouseError
from pilothouse.sdk.rag import RagClient
from tests.support.servers import RunningServer

RECORDS = [
    {"id": "keys", "text": "To rotate the production API keys, run the rotate-keys job.", "groups": ["ops"]},
    {"id": "prices", "text": "Enterprise discount: up to thirty percent off the list price.", "groups": ["sales"]},
    {"id": "leave", "text": "Every employee has twenty-five days of paid leave a year."},
]


@pytest.fixture(scope="module")
def collection(server: RunningServer) -> str:
    name = f"http-{secrets.token_hex(4)}"
    with Pilothouse(server.url, server.admin_key) as ph:
        ph.request("POST", "/api/rag/collections", json={"name": name, "index": "exact"})
        ph.request("POST", f"/api/rag/collections/{name}/records", json={"records": RECORDS})
    return name


def key(server: RunningServer, role: str) -> str:
    with Pilothouse(server.url, server.admin_key) as ph:
        made = ph.create_key(f"rag-{role}-{secrets.token_hex(3)}", role=role)
    return str(made["secret"])


def sources(found: dict[str, object]) -> list[str]:
    hits = found["hits"]
    assert isinstance(hits, list)
    return [str(h["source"]) for h in hits]


def test_query_route_reads_what_the_identity_may(server: RunningServer, collection: str) -> None:
    with Pilothouse(server.url, key(server, "service")) as ph:
        ops = ph.rag.query(collection, "rotate the API keys", groups=["ops"], k=3)
        assert sources(ops)[0] == "keys" and "prices" not in sources(ops)
        assert ops["trace_id"] and ops["hits"][0]["ranks"]["dense"]["rank"] >= 1
        assert "_acl" not in ops["hits"][0]["metadata"]
        itself = ph.rag.query(collection, "rotate the API keys", k=3)  # no end user named: the key itself
        assert sources(itself) == ["leave"]
        packed = ph.rag.query(collection, "discount", groups=["sales"], k=2, pack_tokens=100)
        assert packed["context"].startswith("[1]") and packed["packed"]["citations"][0]["source"] == "prices"
        with pytest.raises(PilothouseError) as missing:
            ph.rag.query("no-such-collection", "x")
        assert missing.value.status == 404
        with pytest.raises(PilothouseError) as bad:
            ph.rag.query(collection, "x", filters={"any_of": {"_acl": ["g:sales"]}})
        assert bad.value.status == 400 and "_acl" in bad.value.message
        with pytest.raises(PilothouseError) as model:
            ph.rag.query(collection, "x", embedding_model="text-embedding-3-small")
        assert model.value.status == 400 and model.value.body["error"]["code"] == "embedding_model_mismatch"
        rerank = {"model": "smollm2-135m", "top_n": 2}
        judged = ph.rag.query(collection, "paid leave", groups=["ops", "sales"], k=3, rerank=rerank)
        done = judged["rerank"]  # a 135M model may not answer in JSON: then the order stays and says why
        assert done["model"] == "smollm2-135m" and (len(done["scores"]) == 2 or "no readable scores" in done["error"])
        assert len(judged["hits"]) == 3
    with Pilothouse(server.url, key(server, "viewer")) as viewer:
        assert sources(viewer.rag.query(collection, "rotate the API keys")) == ["leave"]
        with pytest.raises(PilothouseError) as refused:
            viewer.rag.query(collection, "rotate the API keys", groups=["ops"])
        assert refused.value.status == 403
    trace = httpx.get(
        f"{server.url}/api/traces/{ops['trace_id']}", headers={"authorization": f"Bearer {server.admin_key}"}
    ).json()
    span = next(s for s in trace["spans"] if s["kind"] == "retrieval")
    assert span["input"]["identity"]["groups"] == ["ops"] and span["output"]["hits"][0]["source"] == "keys"


def test_rag_chat_answers_with_citations_and_a_retrieval_span(server: RunningServer, collection: str) -> None:
    client = OpenAI(base_url=server.base_url, api_key=key(server, "service"))
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-135m",
        max_tokens=8,
        temperature=0,
        messages=[{"role": "user", "content": "How do I rotate the API keys?"}],
        extra_body={"rag": RagClient.chat_body(collection, groups=["ops"], k=2)},
    )
    body = raw.http_response.json()
    citations = body["rag"]["citations"]
    assert citations[0]["source"] == "keys" and all(c["source"] != "prices" for c in citations)
    assert raw.headers["x-pilothouse-rag-citations"] == str(len(citations))
    trace_id = raw.headers["x-pilothouse-trace-id"]
    trace = httpx.get(
        f"{server.url}/api/traces/{trace_id}", headers={"authorization": f"Bearer {server.admin_key}"}
    ).json()
    kinds = [s["kind"] for s in trace["spans"]]
    assert "retrieval" in kinds and "llm" in kinds
    retrieval = next(s for s in trace["spans"] if s["kind"] == "retrieval")
    assert retrieval["id"] == body["rag"]["retrieval_span_id"]
    assert retrieval["output"]["packed"]["citations"][0]["source"] == "keys"
    with pytest.raises(Exception) as refused:
        client.chat.completions.create(
            model="smollm2-135m",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"rag": {"collection": collection, "k": 0}},
        )
    assert "rag.k" in str(refused.value)
