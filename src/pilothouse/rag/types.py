"""The RAG data model shared by ingestion, the indexes and retrieval: collections, access lists, identities.

Access control lives inside the index query. Every chunk carries its document's access list compiled to tokens
in the reserved metadata key `_acl`; a caller's identity compiles to tokens the same way, and a search filters
with `Filter(any_of={"_acl": identity.tokens()})`, so a chunk the caller may not see is never scored, never
returned, never packed into a prompt and never cached for others. Collections belong to one project and a
collection's vectors live in their own partition, so projects never meet.

Tokens: `*` (open to everyone in the project: an access list with no groups and no users), `g:<group>`,
`u:<user>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pilothouse.vectors.filters import Filter

ACL_KEY = "_acl"
"""The reserved index metadata key holding a chunk's access tokens."""
OPEN_TOKEN = "*"

IndexKind = Literal["auto", "exact", "hnsw", "milvus"]
"""`auto`: exact NumPy search up to a size threshold, HNSW above it; `milvus`: a Milvus server or milvus-lite
file named by the collection's `index_uri`."""


@dataclass(frozen=True, slots=True)
class AccessList:
    """Who may read a document besides nobody: groups and users of its project. Both empty: the whole project."""

    groups: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    @classmethod
    def of(cls, groups: Iterable[str] = (), users: Iterable[str] = ()) -> AccessList:
        return cls(frozenset(groups), frozenset(users))

    def is_open(self) -> bool:
        return not self.groups and not self.users

    def tokens(self) -> list[str]:
        """The `_acl` tokens stored with every chunk of the document (sorted, for stable storage)."""
        if self.is_open():
            return [OPEN_TOKEN]
        return sorted([f"g:{g}" for g in self.groups] + [f"u:{u}" for u in self.users])

    def to_json(self) -> dict[str, list[str]]:
        return {"groups": sorted(self.groups), "users": sorted(self.users)}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a retrieval runs for: the project, the end user and their groups.

    `sees_all` skips the access filter (an admin key inspecting a collection); nothing else does."""

    project_id: str
    user: str | None = None
    groups: frozenset[str] = frozenset()
    sees_all: bool = False

    def tokens(self) -> frozenset[str]:
        out = {OPEN_TOKEN, *(f"g:{g}" for g in self.groups)}
        if self.user:
            out.add(f"u:{self.user}")
        return frozenset(out)

    def acl_filter(self, where: Filter | None = None) -> Filter | None:
        """`where` with this identity's access condition added (None: no filter at all, only for `sees_all`)."""
        if self.sees_all:
            return where
        base = where or Filter()
        return Filter(
            equals=base.equals,
            one_of=base.one_of,
            any_of={**base.any_of, ACL_KEY: self.tokens()},
            ranges=base.ranges,
        )

    def may_read(self, acl_tokens: Iterable[str]) -> bool:
        return self.sees_all or not self.tokens().isdisjoint(acl_tokens)


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A collection as the indexes need it. The embedding model is fixed at creation: a query embedded with
    another model is refused, and changing models is a re-embed of the whole collection."""

    id: str
    project_id: str
    name: str
    embedding_model: str
    dimensions: int
    index_kind: IndexKind = "auto"
    index_uri: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    """One chunk as written to a collection's indexes (vector and keyword in step).

    `metadata` holds the document's own metadata keys (scalars or lists of strings, filterable) and the
    reserved keys: `_acl` (tokens), `_document` (document id), `_version` (document version), `_source`,
    `_title`, `_headings` (list of str), `_position` (chunk number in the document), `_indexed_at` and
    `_modified_at` (epoch seconds), `_flags` (list of str, e.g. `injection`)."""

    id: str
    text: str
    vector: Any  # float32 array of the collection's dimensions
    metadata: dict[str, Any]
