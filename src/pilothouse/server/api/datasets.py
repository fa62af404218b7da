"""/api/evals/datasets: versioned evaluation datasets (docs/datasets.md).

Pushing needs the developer role, reading the viewer role; all in the key's own project. A push validates every
item (the error names the first bad one) and makes version N+1 unless the item list equals the latest version's.
`mode: append` adds the items to the latest version's (an item whose id is already there replaces it).
`from-traces` adds items made from production traces; `splits` assigns splits by a seeded hash. Each new version
is an audit event.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pilothouse.audit.chain import append_event
from pilothouse.datasets.from_traces import MAX_TRACES, items_from_traces
from pilothouse.datasets.items import ItemError, validate_items
from pilothouse.datasets.splits import assign_splits, parse_fractions
from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store import datasets as repo
from pilothouse.store.search import EmptyQuery, query_words
from pilothouse.store.traces import BadFilter, ScoreFilter, TraceFilter
from pilothouse.timewindow import time_param
from pilothouse.tracing.model import TraceSource

router = APIRouter(prefix="/api/evals/datasets", tags=["datasets"])

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
MESSAGE = Field(default=None, max_length=2000, description="What changed (kept with the version).")


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    items: list[Any] = Field(description="Items (docs/datasets.md): {input, expected, context, metadata, split, id}.")
    mode: Literal["replace", "append"] = Field(
        default="replace", description="replace: the items are the new version; append: added to the latest's."
    )
    message: str | None = MESSAGE
    description: str | None = Field(default=None, max_length=2000)


class FromTracesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: str | None = None
    until: str | None = None
    model: str | None = None
    status: Literal["ok", "error", "unknown_outcome"] | None = None
    user: str | None = None
    session: str | None = None
    source: TraceSource | None = None
    prompt: str | None = None
    prompt_version: int | None = Field(default=None, ge=1)
    tag: str | None = None
    cost_min: Decimal | None = Field(default=None, ge=0)
    cost_max: Decimal | None = Field(default=None, ge=0)
    latency_min_ms: float | None = Field(default=None, ge=0)
    latency_max_ms: float | None = Field(default=None, ge=0)
    score: str | None = Field(default=None, max_length=240, description="e.g. groundedness<0.5")
    q: str | None = Field(default=None, max_length=1000)
    trace_ids: list[Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]] = Field(
        default_factory=list, max_length=1000, description="Only these traces (ids); with the other filters, AND."
    )
    limit: int = Field(default=100, ge=1, le=MAX_TRACES, description="The newest traces that match, at most.")
    split: str | None = Field(default=None, description="Put the new items in this split.")
    message: str | None = MESSAGE


class SplitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fractions: dict[str, float] = Field(description="Split name -> fraction, summing to 1: {train: 0.8, test: 0.2}")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    message: str | None = MESSAGE


def _summary(dataset: repo.DatasetRow, version: repo.VersionRow) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "description": dataset.description,
        "created_at": dataset.created_at,
        "updated_at": dataset.updated_at,
        "latest": version.to_dict(),
    }


def _found(conn: Any, project_id: str, name: str) -> tuple[repo.DatasetRow, repo.VersionRow]:
    dataset = repo.get_dataset(conn, project_id, name)
    latest = None if dataset is None else repo.latest_version(conn, dataset.id)
    if dataset is None or latest is None:
        raise NotFound(f"no dataset named {name!r} in this project", code="dataset_not_found")
    return dataset, latest


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`old` with `new` appended; an id already in `old` is replaced in place."""
    incoming = {item["id"]: item for item in new}
    merged = [incoming.pop(item["id"], item) for item in old]
    return merged + [item for item in new if item["id"] in incoming]


def _write(
    state: AppState,
    principal: Principal,
    name: str,
    action: str,
    items: list[dict[str, Any]],
    message: str | None,
    details: dict[str, Any],
    description: str | None = None,
) -> dict[str, Any]:
    with state.store.begin() as conn:
        pushed = repo.push_version(
            conn,
            project_id=principal.project_id,
            name=name,
            items=items,
            actor=principal.key_id,
            message=message,
            description=description,
        )
        if pushed.created:
            append_event(
                conn,
                actor=principal.key_id,
                action=action,
                target=name,
                project_id=principal.project_id,
                details={"version": pushed.version.version, "items": pushed.version.item_count, **details},
            )
    return {**_summary(pushed.dataset, pushed.version), "created": pushed.created}


def _validated(raw: list[Any]) -> list[dict[str, Any]]:
    try:
        return validate_items(raw)
    except ItemError as exc:
        raise InvalidRequest(str(exc), code="invalid_dataset_item", param="items") from None


@router.post("")
async def push_dataset(body: PushBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Store items as the dataset's next version (created on the first push); `created` is false when the list
    equals the latest version's."""
    require_role(principal, "developer")

    def write() -> dict[str, Any]:
        items = _validated(body.items)
        if body.mode == "append":
            with state.store.connect() as conn:
                dataset = repo.get_dataset(conn, principal.project_id, body.name)
                latest = None if dataset is None else repo.latest_version(conn, dataset.id)
                old = [] if latest is None else repo.version_items(conn, latest.id)
            items = _validated(_merge(old, items))
        if not items:
            raise InvalidRequest(
                "a dataset version needs at least one item", code="invalid_dataset_item", param="items"
            )
        details = {"mode": body.mode}
        return _write(state, principal, body.name, "dataset.push", items, body.message, details, body.description)

    return await asyncio.to_thread(write)


@router.get("")
async def list_datasets(state: StateDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every dataset of the key's project with its latest version."""
    require_role(principal, "viewer")

    def read() -> list[dict[str, Any]]:
        with state.store.connect() as conn:
            return [_summary(d, v) for d, v in repo.list_datasets(conn, principal.project_id)]

    return await asyncio.to_thread(read)


VersionQuery = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A version (default: the latest).")]


def _shown(conn: Any, dataset: repo.DatasetRow, latest: repo.VersionRow, version: int | None) -> repo.VersionRow:
    shown = latest if version is None else repo.get_version(conn, dataset.id, version)
    if shown is None:
        raise NotFound(f"dataset {dataset.name!r} has no version {version}", code="dataset_version_not_found")
    return shown


@router.get("/{name}")
async def show_dataset(
    name: str, state: StateDep, principal: PrincipalDep, version: VersionQuery = None
) -> dict[str, Any]:
    """A dataset with its latest version and the version asked for (`shown`)."""
    require_role(principal, "viewer")

    def read() -> dict[str, Any]:
        with state.store.connect() as conn:
            dataset, latest = _found(conn, principal.project_id, name)
            shown = _shown(conn, dataset, latest, version)
        return {**_summary(dataset, latest), "shown": shown.to_dict()}

    return await asyncio.to_thread(read)


@router.get("/{name}/versions")
async def dataset_versions(name: str, state: StateDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every version, newest first."""
    require_role(principal, "viewer")

    def read() -> list[dict[str, Any]]:
        with state.store.connect() as conn:
            dataset, _ = _found(conn, principal.project_id, name)
            return [v.to_dict() for v in repo.list_versions(conn, dataset.id)]

    return await asyncio.to_thread(read)


@router.get("/{name}/items")
async def dataset_items(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    version: VersionQuery = None,
    split: Annotated[str | None, Query(max_length=40, description="Only this split's items.")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> dict[str, Any]:
    """A page of a version's items in order; `next_offset` is null at the end."""
    require_role(principal, "viewer")

    def read() -> dict[str, Any]:
        with state.store.connect() as conn:
            dataset, latest = _found(conn, principal.project_id, name)
            shown = _shown(conn, dataset, latest, version)
            page = repo.version_items(conn, shown.id, split=split, offset=offset, limit=limit + 1)
        more = len(page) > limit
        return {"version": shown.version, "data": page[:limit], "next_offset": offset + limit if more else None}

    return await asyncio.to_thread(read)


@router.post("/{name}/from-traces")
async def add_from_traces(name: str, body: FromTracesBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Add items made from the newest traces that match the filter (docs/datasets.md#from-traces) as a new version
    (the dataset is created if it does not exist); traces without kept content are skipped and counted."""
    require_role(principal, "developer")

    def write() -> dict[str, Any]:
        try:
            flt = TraceFilter(
                project_id=principal.project_id,
                since=time_param(body.since, "since"),
                until=time_param(body.until, "until"),
                model=body.model,
                status=body.status,
                user_id=body.user,
                session_id=body.session,
                source=body.source,
                prompt_name=body.prompt,
                prompt_version=body.prompt_version,
                tag=body.tag,
                cost_min=body.cost_min,
                cost_max=body.cost_max,
                latency_min_ms=body.latency_min_ms,
                latency_max_ms=body.latency_max_ms,
                score=None if body.score is None else ScoreFilter.parse(body.score),
                q=body.q,
                ids=tuple(body.trace_ids),
            )
            if body.q is not None:
                query_words(body.q)
            with state.store.connect() as conn:
                found = items_from_traces(conn, flt, limit=body.limit)
                dataset = repo.get_dataset(conn, principal.project_id, name)
                latest = None if dataset is None else repo.latest_version(conn, dataset.id)
                old = [] if latest is None else repo.version_items(conn, latest.id)
        except BadFilter as exc:
            raise InvalidRequest(str(exc), param=exc.param) from exc
        except EmptyQuery as exc:
            raise InvalidRequest(str(exc), param="q") from exc
        new = [{**item, "split": body.split} if body.split else item for item in found.items]
        skipped = dict(found.skipped)
        if not new:
            raise InvalidRequest(
                f"no trace matching the filter could become an item (skipped: {skipped or 'no traces matched'})",
                code="no_traces",
            )
        items = _validated(_merge(old, new))
        details = {"added": len(new), "skipped": skipped}
        result = _write(state, principal, name, "dataset.from_traces", items, body.message, details)
        return {**result, "added": len(new), "skipped": skipped}

    return await asyncio.to_thread(write)


@router.post("/{name}/splits")
async def set_splits(name: str, body: SplitBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """A new version with every item assigned to a split by a seeded hash of its id (stable across versions)."""
    require_role(principal, "developer")

    def write() -> dict[str, Any]:
        try:
            fractions = parse_fractions(body.fractions)
        except ItemError as exc:
            raise InvalidRequest(str(exc), code="invalid_splits", param="fractions") from None
        with state.store.connect() as conn:
            dataset, latest = _found(conn, principal.project_id, name)
            items = repo.version_items(conn, latest.id)
        split = assign_splits(items, fractions, seed=body.seed)
        details = {"fractions": fractions, "seed": body.seed}
        return _write(state, principal, dataset.name, "dataset.split", split, body.message, details)

    return await asyncio.to_thread(write)
