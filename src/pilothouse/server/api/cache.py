"""/api/cache: explain whether one question would get the answer cached for another, and per-project similarity
thresholds of the semantic cache (docs/caching.md#explain-and-per-project-thresholds).

Explaining needs the developer role; reading a threshold the viewer role, changing it the admin role. Each
acts in the key's project; owner keys may name another (server/scope.py). A change is an audit event and
takes effect on this replica at once, on the others within `limits.definitions_ttl_s`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from pilothouse.audit.chain import append_event
from pilothouse.config import Settings
from pilothouse.gateway.cache.explain import explain
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.semantic import SemanticCache
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.scope import audit_cross_read, audit_details, resolve_project
from pilothouse.server.state import AppState
from pilothouse.store import cache_thresholds as repo

router = APIRouter(prefix="/api/cache", tags=["cache"])

MAX_QUESTION_CHARS = 8000
"""The longest question `explain` takes; far past the embedding model's window (longer ones never hit)."""

Question = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=r"\S", description="Text, not only white space."),
]
ProjectField = Field(
    default=None, description="A project id or name (default: the key's project; another: owner keys only)."
)


class ExplainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question = Field(description="The question asked (the last user message of a request).")
    cached: Question = Field(description="The question whose answer is cached.")
    project: str | None = ProjectField


class ContrastVerdict(BaseModel):
    ok: bool
    reason: str | None = Field(description="Why the check refuses, naming the words.")
    kind: str | None = Field(description="The class of a refusal (negation, opposites, numbers, ...).")


class Explained(BaseModel):
    project_id: str
    similarity: float | None = Field(description="Cosine of the two embeddings; null: a text too long to embed.")
    threshold: float = Field(description="The threshold that applies: the project's own, else the configured one.")
    threshold_source: Literal["project", "default"]
    default_threshold: float = Field(description="cache.semantic.threshold of this server.")
    contrast: ContrastVerdict | None = Field(description="The contrast check's verdict; null: the checks are off.")
    decision: Literal["hit", "refused", "below_threshold", "not_checked"] = Field(
        description="What a lookup would record as pilothouse.cache.contrast.decision."
    )
    would_hit: bool
    answer: str = Field(description="'would hit', or 'would not hit: ' and why.")
    semantic_cache: Literal["on", "per-request", "off"] = Field(
        description="This server's semantic cache: on for every request, per request (x-pilothouse-cache: "
        "semantic), or off (the explanation then says what it would do)."
    )


class ThresholdSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(ge=repo.MIN_THRESHOLD, le=repo.MAX_THRESHOLD, description="Least cosine of a hit.")
    project: str | None = ProjectField


class Threshold(BaseModel):
    project_id: str
    threshold: float = Field(description="The threshold that applies to the project's semantic lookups.")
    source: Literal["project", "default"]
    default: float = Field(description="cache.semantic.threshold of this server.")
    override: float | None = Field(description="The project's own threshold, if set.")
    updated_at: float | None = None
    updated_by: str | None = None


class ThresholdChanged(Threshold):
    previous: float | None = Field(description="The project's own threshold before this change, if it had one.")
    changed: bool


def _semantic_mode(settings: Settings) -> Literal["on", "per-request", "off"]:
    if not settings.cache.enabled:
        return "off"
    return "on" if settings.cache.semantic.enabled else "per-request"


def _semantic(request: Request, state: AppState) -> SemanticCache:
    """The cache's own embedder and checker; with caching off, a set of its own, built on first use."""
    if state.cache is not None:
        return state.cache.semantic
    found: SemanticCache | None = getattr(request.app.state, "cache_explainer", None)
    if found is None:
        found = SemanticCache(state.settings.cache.semantic, MemoryCacheStore())
        request.app.state.cache_explainer = found
    return found


def _view(settings: Settings, project_id: str, override: repo.ThresholdOverride | None) -> Threshold:
    default = settings.cache.semantic.threshold
    if override is None:
        return Threshold(project_id=project_id, threshold=default, source="default", default=default, override=None)
    return Threshold(
        project_id=project_id,
        threshold=override.threshold,
        source="project",
        default=default,
        override=override.threshold,
        updated_at=override.updated_at,
        updated_by=override.updated_by,
    )


async def _read(state: AppState, principal: Principal, project: str | None, action: str) -> Threshold:
    """The project's threshold view, after auditing an owner's look into another project."""

    def read() -> Threshold:
        with state.store.connect() as conn:
            project_id = resolve_project(conn, principal, project)
            override = repo.get_threshold(conn, project_id)
        audit_cross_read(state.store, principal, action, project_id)
        return _view(state.settings, project_id, override)

    return await asyncio.to_thread(read)


async def _reload(state: AppState) -> None:
    """This replica applies a change at once (the others on their next reload)."""
    if state.cache is not None and state.cache.thresholds is not None:
        await asyncio.to_thread(state.cache.thresholds.reload)


@router.post("/explain", response_model=Explained)
async def explain_pair(body: ExplainBody, request: Request, state: StateDep, principal: PrincipalDep) -> Explained:
    """Whether `question` would get the answer cached for `cached` (everything else in the request being the
    same): their similarity, the threshold that applies, the contrast check's verdict, and the answer."""
    require_role(principal, "developer")
    applies = await _read(state, principal, body.project, "cache.explain")
    found = await explain(
        _semantic(request, state),
        body.question,
        body.cached,
        threshold=applies.threshold,
        threshold_source=applies.source,
    )
    verdict = found.contrast
    return Explained(
        project_id=applies.project_id,
        similarity=None if found.similarity is None else round(found.similarity, 6),
        threshold=found.threshold,
        threshold_source=applies.source,
        default_threshold=applies.default,
        contrast=None if verdict is None else ContrastVerdict(ok=verdict.ok, reason=verdict.reason, kind=verdict.kind),
        decision=found.decision,
        would_hit=found.would_hit,
        answer=found.answer,
        semantic_cache=_semantic_mode(state.settings),
    )


@router.get("/threshold", response_model=Threshold)
async def get_threshold(state: StateDep, principal: PrincipalDep, project: str | None = None) -> Threshold:
    """The semantic cache's threshold for the key's project (owner keys: another `project`), and where it
    comes from."""
    require_role(principal, "viewer")
    return await _read(state, principal, project, "cache.threshold.read")


@router.put("/threshold", response_model=ThresholdChanged)
async def set_threshold(body: ThresholdSet, state: StateDep, principal: PrincipalDep) -> ThresholdChanged:
    """Give the project its own threshold (0.5 to 1.0). A lower one brings more candidates; each must still
    pass the contrast check."""
    require_role(principal, "admin")

    def write() -> ThresholdChanged:
        with state.store.begin() as conn:
            project_id = resolve_project(conn, principal, body.project)
            override, previous = repo.set_threshold(
                conn, project_id=project_id, threshold=body.threshold, actor=principal.key_id
            )
            was = None if previous is None else previous.threshold
            append_event(
                conn,
                actor=principal.key_id,
                action="cache.threshold.set",
                target=project_id,
                project_id=project_id,
                details=audit_details(principal, project_id, {"threshold": override.threshold, "previous": was}),
            )
        view = _view(state.settings, project_id, override)
        return ThresholdChanged(**view.model_dump(), previous=was, changed=was != override.threshold)

    changed = await asyncio.to_thread(write)
    await _reload(state)
    return changed


@router.delete("/threshold", response_model=ThresholdChanged)
async def clear_threshold(state: StateDep, principal: PrincipalDep, project: str | None = None) -> ThresholdChanged:
    """Remove the project's own threshold: the configured one applies again. Without one, nothing changes."""
    require_role(principal, "admin")

    def remove() -> ThresholdChanged:
        with state.store.begin() as conn:
            project_id = resolve_project(conn, principal, project)
            previous = repo.clear_threshold(conn, project_id)
            was = None if previous is None else previous.threshold
            if previous is not None:
                append_event(
                    conn,
                    actor=principal.key_id,
                    action="cache.threshold.clear",
                    target=project_id,
                    project_id=project_id,
                    details=audit_details(principal, project_id, {"previous": was}),
                )
        view = _view(state.settings, project_id, None)
        return ThresholdChanged(**view.model_dump(), previous=was, changed=previous is not None)

    changed = await asyncio.to_thread(remove)
    await _reload(state)
    return changed
