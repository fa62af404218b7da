"""A retrieval step: the best chunks of a RAG collection for `query(state)`, into the state.

    flow.retrieve("find", collection="handbook", query=lambda s: s.question, k=4,
                  identity=lambda s: {"user": s.user, "groups": s.groups}, pack=800, output="chunks",
                  context="context")

The retrieval runs through the same query service as `POST /api/rag/{collection}/query` (rag/querying.py):
the collection is one of the run's project (another project's is not found), the access filter runs inside
the index search, and `mode`, `k`, `filters` and the other retrieval options (rag/options.py) mean what they
mean there. Whom it runs for follows rag/identity.py: the run acts as the key that started it with role
`service`, so without `identity` it reads what that key reads (the documents open to the whole project), and
with `identity=lambda s: {"user": ..., "groups": [...]}` it reads what that end user may read; `{"all": true}`
(admin only) is refused. Every retrieval is a `retrieval` span (rag/spans.py) under the step's span.

State field `output` receives the hits, best first: `{"id", "text", "score", "document", "source", "title",
"flags", "citation"}`. `flags` keeps the chunk's safety flags (`["injection"]` for text that reads like
instructions to a model) so a later guard step or branch can act on them. `citation` is the marker `n` of
`[n]`: with `pack` (a token budget, or `{"budget_tokens", "drop_flags", "reorder"}`) the marker the chunk has
in the packed context block (None for a chunk the packer dropped, with `dropped` giving the reason) and the
block goes to state field `context`; without it, the hit's rank.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from pilothouse.errors import ApiError
from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import FlowDefinitionError, FlowError
from pilothouse.flows.spans import SpanWriter, emit
from pilothouse.flows.steps.base import StepResult
from pilothouse.gateway.tokens import estimate_text_tokens
from pilothouse.principal import Principal
from pilothouse.rag.identity import identity_for
from pilothouse.rag.options import IdentityBody, RetrievalOptions
from pilothouse.rag.packing import Packed, PackItem, pack
from pilothouse.rag.querying import RagQueries
from pilothouse.rag.retrieve import Query, Retrieval
from pilothouse.rag.spans import chunk_flags, record_retrieval
from pilothouse.tracing.model import TraceRecord

StateFn = Callable[[Any], Any]
_NOT_OPTIONS = ("identity", "rerank")


class RetrievalFailed(FlowError):
    """The query service refused the retrieval (no such collection, an identity the run may not assert, bad
    options): asking again will not help."""

    retryable = False

    def __init__(self, error: ApiError, *, step: str, collection: str) -> None:
        super().__init__(
            f"step {step!r}: retrieval from collection {collection!r} failed "
            f"({error.status} {error.code or error.type}): {error.message}"
        )
        self.status = error.status
        self.code = error.code


@dataclass(frozen=True, slots=True)
class PackSpec:
    """Pack the hits into a context block of at most `budget_tokens` (rag/packing.py)."""

    budget_tokens: int
    drop_flags: frozenset[str] = frozenset()
    reorder: bool = True

    def pack(self, retrieval: Retrieval) -> Packed:
        items = [PackItem(h.id, h.text, h.score, h.metadata) for h in retrieval.hits]
        return pack(
            items,
            budget=self.budget_tokens,
            count_tokens=estimate_text_tokens,
            drop_flags=self.drop_flags,
            reorder=self.reorder,
        )


@dataclass(slots=True)
class Retrieved:
    """A retrieval a step made: the hits, the packed context (with `pack`), and the id of its span."""

    retrieval: Retrieval
    packed: Packed | None = None
    span_id: str | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        markers = {c.chunk_id: c.marker for c in self.packed.citations} if self.packed else {}
        dropped = {d.chunk_id: d.reason for d in self.packed.dropped} if self.packed else {}
        for rank, hit in enumerate(self.retrieval.hits, start=1):
            meta = hit.metadata or {}
            chunk: dict[str, Any] = {
                "id": hit.id,
                "text": hit.text,
                "score": round(float(hit.score), 6),
                "document": meta.get("_document"),
                "source": meta.get("_source"),
                "title": meta.get("_title"),
                "flags": chunk_flags(meta),
                "citation": markers.get(hit.id) if self.packed else rank,
            }
            if hit.id in dropped:
                chunk["dropped"] = dropped[hit.id]
            self.chunks.append(chunk)

    @property
    def flagged(self) -> dict[str, list[str]]:
        """Hit id -> its safety flags, for the hits that have any."""
        return {c["id"]: c["flags"] for c in self.chunks if c["flags"]}


class RagRetrieval:
    """The retrievals of an engine's steps (`StepContext.retrieve`) through `RagQueries`, each a `retrieval`
    span under the step's span in the run's trace.

    A run acts as the key that started it (`created_by`), or as `key_id` when none did (a local
    `pilothouse flow run`), with role `role`: `service` lets a step name its end user and their groups, as a
    service key may on the HTTP query, and nothing lets it read past the access lists."""

    def __init__(
        self, queries: RagQueries, *, tracer: SpanWriter | None = None, key_id: str = "flow", role: str = "service"
    ) -> None:
        self.queries = queries
        self.tracer = tracer
        self.key_id = key_id
        self.role = role

    def principal(self, ctx: StepContext) -> Principal:
        return Principal(key_id=ctx.created_by or self.key_id, project_id=ctx.project_id, role=self.role)

    async def retrieve(
        self,
        ctx: StepContext,
        collection: str,
        query: Query,
        *,
        identity: Mapping[str, Any] | None = None,
        pack: PackSpec | None = None,
    ) -> Retrieved:
        started = time.time()
        try:
            who = identity_for(self.principal(ctx), identity)
            retrieval = await self.queries.run_async(who, collection, query)
        except ApiError as exc:
            raise RetrievalFailed(exc, step=ctx.step, collection=collection) from exc
        packed = pack.pack(retrieval) if pack is not None else None
        trace = TraceRecord(
            project_id=ctx.project_id, name=f"flow {ctx.flow_name}", id=ctx.trace_id or "", source="flow"
        )
        span = record_retrieval(trace, retrieval, packed=packed, parent_id=ctx.span_id, started_at=started)
        span.attributes["pilothouse.flow.run_id"] = ctx.run_id
        await emit(self.tracer, flow_name=ctx.flow_name, spans=[span])
        return Retrieved(retrieval, packed, span.id)


class RetrieveStep:
    kind: ClassVar[str] = "retrieve"

    def __init__(
        self,
        *,
        collection: str,
        query: StateFn | str,
        k: int = 5,
        mode: str = "hybrid",
        filters: StateFn | Mapping[str, Any] | None = None,
        identity: StateFn | Mapping[str, Any] | None = None,
        pack: int | Mapping[str, Any] | PackSpec | None = None,
        output: str | None = "chunks",
        context: str | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(collection, str) or not collection:
            raise FlowDefinitionError("a retrieve step needs collection='name' (`pilothouse rag collections`)")
        if not callable(query) and not (isinstance(query, str) and query.strip()):
            raise FlowDefinitionError("a retrieve step needs query=lambda state: text (or a fixed text)")
        refused = sorted(set(options) & set(_NOT_OPTIONS))
        if refused:
            raise FlowDefinitionError(f"a retrieve step takes identity= as a function of the state, not {refused}")
        if context is not None and pack is None:
            raise FlowDefinitionError("context=... receives the packed block: give pack=<token budget> too")
        self.collection = collection
        self.query = query
        self.filters = filters
        self.identity = identity
        self.output = output
        self.context = context
        self.pack = _pack_spec(pack)
        self.settings = {"k": k, "mode": mode, **options}
        fixed = None if callable(filters) else filters
        self.options(fixed)  # the options are checked as the flow is built
        if identity is not None and not callable(identity):
            _asserted(identity)

    def options(self, filters: Mapping[str, Any] | None) -> RetrievalOptions:
        """The retrieval options with `filters`, validated as the HTTP query validates them."""
        try:
            options = RetrievalOptions.model_validate({**self.settings, "filters": filters})
            options.to_query("check")
        except ValidationError as exc:
            raise FlowDefinitionError(f"invalid retrieval options: {_first_error(exc)}") from None
        except ApiError as exc:
            raise FlowDefinitionError(f"invalid retrieval options: {exc.message}") from None
        return options

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        text = self.query(state) if callable(self.query) else self.query
        if not isinstance(text, str) or not text.strip():
            raise TypeError(f"query(state) returned {text!r}: it must return the non-empty text to search for")
        filters = self.filters(state) if callable(self.filters) else self.filters
        if filters is not None and not isinstance(filters, Mapping):
            raise TypeError(f"filters(state) returned {type(filters).__name__}: it must return a dict or None")
        asserted = self.identity(state) if callable(self.identity) else self.identity
        asserted = _asserted(asserted) if asserted is not None else None
        try:
            query = self.options(filters).to_query(text)
        except FlowDefinitionError as exc:
            raise FlowError(f"step {ctx.step!r}: {exc}") from None
        got = await ctx.retrieve(self.collection, query, identity=asserted, pack=self.pack)
        ctx.span.attributes.update(
            {
                "pilothouse.retrieval.collection": self.collection,
                "pilothouse.retrieval.hits": len(got.chunks),
                "pilothouse.retrieval.span_id": got.span_id or "",
            }
        )
        if got.flagged:
            ctx.span.attributes["pilothouse.retrieval.flagged_chunks"] = got.flagged
        updates: dict[str, Any] = {self.output: got.chunks} if self.output else {}
        if self.context and got.packed is not None:
            updates[self.context] = got.packed.context
        output: dict[str, Any] = {"collection": self.collection, "hits": got.chunks, "flagged": got.flagged}
        if got.packed is not None:
            output["context"] = got.packed.context
            output["packed"] = got.packed.to_json()
        step_input = {
            "collection": self.collection,
            "query": text,
            "identity": asserted,
            "filters": dict(filters) if filters else None,
            "mode": query.mode,
            "k": query.k,
        }
        return StepResult(updates=updates, output=output, input=step_input)


def _pack_spec(value: int | Mapping[str, Any] | PackSpec | None) -> PackSpec | None:
    if value is None or isinstance(value, PackSpec):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"budget_tokens": value}
    if not isinstance(value, Mapping):
        raise FlowDefinitionError("pack= takes a token budget or {'budget_tokens', 'drop_flags', 'reorder'}")
    unknown = sorted(set(value) - {"budget_tokens", "drop_flags", "reorder"})
    budget = value.get("budget_tokens")
    if unknown or not isinstance(budget, int) or isinstance(budget, bool) or not 1 <= budget <= 2_000_000:
        raise FlowDefinitionError(
            "pack= takes a token budget (1 to 2000000) or {'budget_tokens', 'drop_flags', 'reorder'}"
        )
    drop = value.get("drop_flags") or ()
    if isinstance(drop, str) or not all(isinstance(f, str) for f in drop):
        raise FlowDefinitionError("pack['drop_flags'] is a list of flag names, e.g. ['injection']")
    return PackSpec(budget, frozenset(drop), bool(value.get("reorder", True)))


def _asserted(value: Any) -> dict[str, Any]:
    """The identity a step asserts, in the HTTP query's shape (`{"user", "groups"}`)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"identity(state) returned {type(value).__name__}: it must return a dict or None")
    try:
        return IdentityBody.model_validate(dict(value)).asserted()
    except ValidationError as exc:
        raise FlowDefinitionError(f"invalid identity: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "value"
    return f"{where}: {error.get('msg')}"
