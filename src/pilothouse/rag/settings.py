"""A collection's ingestion settings (kept in `rag_collections.settings`): chunking, safety policies, freshness.

- `chunk_tokens` / `overlap_tokens`: chunk size and overlap in the embedding model's tokens;
- `injection`: what an indirect prompt injection found in a chunk at ingestion does: `flag` (indexed, with
  `injection` in the chunk's `_flags`, which travel into retrieval spans), `quarantine` (the whole document is
  kept out of the indexes until its source changes) or `off`; `injection_threshold` is the scanner score that
  counts as found;
- `pii`: `redact` masks personal data (guards `pii` scanner) before chunking and embedding, `off` keeps it;
- `ttl_days`: a document indexed longer ago than this is stale (None: never by age);
- `sources`: the folders ingested into the collection with their access lists (what `sync` walks again).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pilothouse.rag.chunking import ChunkingOptions
from pilothouse.rag.types import AccessList

InjectionPolicy = Literal["off", "flag", "quarantine"]
PiiPolicy = Literal["off", "redact"]
INJECTION_POLICIES: tuple[InjectionPolicy, ...] = ("off", "flag", "quarantine")
PII_POLICIES: tuple[PiiPolicy, ...] = ("off", "redact")


@dataclass(frozen=True, slots=True)
class FolderSource:
    """A folder ingested into a collection, and the access list its files get."""

    path: str
    acl: AccessList = field(default_factory=AccessList)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "acl": self.acl.to_json()}


@dataclass(frozen=True, slots=True)
class CollectionSettings:
    chunk_tokens: int = 200
    overlap_tokens: int = 40
    injection: InjectionPolicy = "flag"
    injection_threshold: float = 0.5
    pii: PiiPolicy = "off"
    ttl_days: float | None = None
    sources: tuple[FolderSource, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        ChunkingOptions(self.chunk_tokens, self.overlap_tokens)  # raises ValueError with the reason
        if self.injection not in INJECTION_POLICIES:
            raise ValueError(f"injection policy must be one of {', '.join(INJECTION_POLICIES)}")
        if self.pii not in PII_POLICIES:
            raise ValueError(f"pii policy must be one of {', '.join(PII_POLICIES)}")
        if not 0.0 < self.injection_threshold <= 1.0:
            raise ValueError("injection_threshold must be in (0, 1]")
        if self.ttl_days is not None and self.ttl_days <= 0:
            raise ValueError("ttl_days must be positive")

    @property
    def chunking(self) -> ChunkingOptions:
        return ChunkingOptions(self.chunk_tokens, self.overlap_tokens)

    def with_source(self, source: FolderSource) -> CollectionSettings:
        others = tuple(s for s in self.sources if s.path != source.path)
        return replace(self, sources=(*others, source))

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk_tokens": self.chunk_tokens,
            "overlap_tokens": self.overlap_tokens,
            "injection": self.injection,
            "injection_threshold": self.injection_threshold,
            "pii": self.pii,
            "ttl_days": self.ttl_days,
            "sources": [s.to_json() for s in self.sources],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CollectionSettings:
        sources = tuple(
            FolderSource(
                str(s["path"]),
                AccessList.of(s.get("acl", {}).get("groups", ()), s.get("acl", {}).get("users", ())),
            )
            for s in raw.get("sources", ())
        )
        names = ("chunk_tokens", "overlap_tokens", "injection", "injection_threshold", "pii")
        known: dict[str, Any] = {k: raw[k] for k in names if k in raw}
        return cls(**known, ttl_days=raw.get("ttl_days"), sources=sources)
