"""The retrieval methods of the `Pilothouse` client: `ph.rag` (docs/rag-retrieval.md).

ph = Pilothouse()
found = ph.rag.query("handbook", "how do I rotate keys?", k=5, filters={"equals": {"team": "ops"}})
for hit in found["hits"]:
    print(hit["score"], hit["source"], hit["text"][:80])

RAG chat goes through the gateway with any OpenAI client: add `extra_body={"rag": {"collection": "handbook"}}`
(`ph.rag.chat_body` builds that object).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote


class _Requests(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


class RagClient:
    """Queries against the server's collections, as the client's key (and, for service keys and above, the
    end user it names)."""

    def __init__(self, client: _Requests) -> None:
        self._client = client

    def query(
        self,
        collection: str,
        query: str,
        *,
        k: int = 5,
        mode: str = "hybrid",
        filters: Mapping[str, Any] | None = None,
        user: str | None = None,
        groups: Sequence[str] | None = None,
        pack_tokens: int | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Retrieve the `k` best chunks of `collection` for `query`. `filters`: `{"equals": {...}, "one_of": ...,
        "any_of": ..., "ranges": {"year": {"gte": 2024}}}`; `user` / `groups`: the end user to retrieve for;
        `pack_tokens`: also pack the hits into a context block of that many tokens. Other options (`fusion`,
        `weights`, `rrf_k`, `candidates`, `min_score`, `mmr_lambda`, `embedding_model`, ...) pass through."""
        body: dict[str, Any] = {"query": query, "k": k, "mode": mode, **options}
        if filters:
            body["filters"] = dict(filters)
        if user is not None or groups:
            body["identity"] = _identity(user, groups)
        if pack_tokens is not None:
            body["pack"] = {"budget_tokens": pack_tokens}
        result: dict[str, Any] = self._client.request("POST", f"/api/rag/{quote(collection, safe='')}/query", json=body)
        return result

    @staticmethod
    def chat_body(
        collection: str, *, user: str | None = None, groups: Sequence[str] | None = None, **options: Any
    ) -> dict[str, Any]:
        """The `rag` object of a chat request (pass as `extra_body={"rag": ...}` with the OpenAI client)."""
        body: dict[str, Any] = {"collection": collection, **options}
        if user is not None or groups:
            body["identity"] = _identity(user, groups)
        return body


def _identity(user: str | None, groups: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"groups": list(groups or [])}
    if user is not None:
        out["user"] = user
    return out
