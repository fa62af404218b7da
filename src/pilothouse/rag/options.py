"""The retrieval options a request carries, shared by `POST /api/rag/{collection}/query` and a chat request's
`rag` object: how to retrieve (mode, fusion, k, thresholds, MMR), metadata filters, and whom for.

Filters name metadata keys of the collection's documents (`team`, `year`, ...) and the reserved keys
(`_document`, `_source`, `_title`, `_modified_at`, ...), except `_acl`: access is the identity's, added by
retrieval, never the request's to set.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pilothouse.errors import InvalidRequest
from pilothouse.rag.fusion import RRF_K, FusionMethod, Normalisation
from pilothouse.rag.rerank import RerankOptions
from pilothouse.rag.retrieve import MAX_CANDIDATES, MAX_K, Mode, Query
from pilothouse.rag.types import ACL_KEY
from pilothouse.vectors.filters import Filter, Scalar

KeyName = str
MAX_KEYS = 32
MAX_VALUES = 256


class RangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gte: float | None = Field(default=None, description="Lowest value allowed (inclusive).")
    lte: float | None = Field(default=None, description="Highest value allowed (inclusive).")


class FilterBody(BaseModel):
    """A conjunction of conditions on chunk metadata (every named key must match)."""

    model_config = ConfigDict(extra="forbid")

    equals: dict[KeyName, str | int | float | bool] = Field(default_factory=dict, description="key == value")
    one_of: dict[KeyName, list[str | int | float | bool]] = Field(
        default_factory=dict, description="key is one of the values"
    )
    any_of: dict[KeyName, list[str]] = Field(
        default_factory=dict, description="a list-valued key shares at least one value with these"
    )
    ranges: dict[KeyName, RangeBody] = Field(default_factory=dict, description="gte <= key <= lte (numbers)")

    def to_filter(self) -> Filter | None:
        keys = [*self.equals, *self.one_of, *self.any_of, *self.ranges]
        if len(keys) > MAX_KEYS:
            raise InvalidRequest(f"at most {MAX_KEYS} filter conditions", param="filters")
        for key in keys:
            if key == ACL_KEY:
                raise InvalidRequest("filters cannot name _acl: access follows the caller's identity", param="filters")
            if not key or len(key) > 200:
                raise InvalidRequest("filter keys must be 1 to 200 characters", param="filters")
        counts = [len(v) for v in self.one_of.values()] + [len(v) for v in self.any_of.values()]
        for count in counts:
            if not 1 <= count <= MAX_VALUES:
                raise InvalidRequest(f"one_of and any_of take 1 to {MAX_VALUES} values", param="filters")
        for key, span in self.ranges.items():
            if span.gte is None and span.lte is None:
                raise InvalidRequest(f"range {key!r} needs gte, lte or both", param="filters")
            if span.gte is not None and span.lte is not None and span.gte > span.lte:
                raise InvalidRequest(f"range {key!r} has gte above lte", param="filters")
        where = Filter(
            equals=dict(self.equals),
            one_of={k: frozenset[Scalar](v) for k, v in self.one_of.items()},
            any_of={k: frozenset(v) for k, v in self.any_of.items()},
            ranges={k: (r.gte, r.lte) for k, r in self.ranges.items()},
        )
        return None if where.is_empty() else where


class IdentityBody(BaseModel):
    """Whom the retrieval runs for (service keys and above; see docs/rag-retrieval.md#access)."""

    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(default=None, min_length=1, max_length=200, description="The end user.")
    groups: list[str] = Field(default_factory=list, max_length=256, description="The end user's groups.")
    all: bool = Field(default=False, description="Admin keys: read without the access lists.")

    def asserted(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)


class RetrievalOptions(BaseModel):
    """How to retrieve."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=5, ge=1, le=MAX_K, description="How many chunks to return.")
    mode: Mode = Field(default="hybrid", description="dense, keyword or hybrid.")
    fusion: FusionMethod = Field(default="rrf", description="Hybrid: rrf or weighted.")
    weights: dict[Literal["dense", "keyword"], float] | None = Field(
        default=None,
        description="Hybrid: weight of each retriever (rrf default: dense 3, keyword 1; weighted default: equal).",
    )
    rrf_k: int = Field(default=RRF_K, ge=0, le=100_000, description="The RRF constant.")
    normalisation: Normalisation = Field(default="minmax", description="Weighted fusion: minmax or zscore.")
    candidates: int = Field(default=50, ge=1, le=MAX_CANDIDATES, description="Chunks per retriever before fusion.")
    filters: FilterBody | None = Field(default=None, description="Metadata conditions (not _acl).")
    min_score: float | None = Field(default=None, description="Drop results scoring below this.")
    mmr_lambda: float | None = Field(default=None, ge=0.0, le=1.0, description="MMR diversity trade-off.")
    embedding_model: str | None = Field(
        default=None, max_length=200, description="Refuse unless the collection uses this model."
    )
    identity: IdentityBody | None = Field(default=None, description="The end user (service keys and above).")
    rerank: RerankOptions | None = Field(default=None, description="Rerank the best chunks with a chat model.")

    def to_query(self, text: str, *, vector: list[float] | None = None) -> Query:
        weights = self.weights
        if weights is not None and any(not w >= 0 for w in weights.values()):
            raise InvalidRequest("weights must be >= 0", param="weights")
        return Query(
            text=text,
            k=self.k,
            mode=self.mode,
            fusion=self.fusion,
            weights={str(name): w for name, w in weights.items()} if weights is not None else None,
            rrf_k=self.rrf_k,
            normalisation=self.normalisation,
            candidates=max(self.candidates, self.k),
            where=self.filters.to_filter() if self.filters is not None else None,
            min_score=self.min_score,
            mmr_lambda=self.mmr_lambda,
            embedding_model=self.embedding_model,
            vector=vector,
        )
