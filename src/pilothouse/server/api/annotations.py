"""/api/evals/queues: annotation queues, where people score traces and experiment results (docs/evaluation.md).

A queue has one score configuration (its name and type: numeric with a range, boolean, or categorical with its
categories), the same kinds of score the judges give, so people's answers and a judge's can be compared
(`eval calibrate --label queue:NAME`). Creating queues and adding items needs the developer role; taking the next
task and answering it the service role, like recording any score. An answer on a trace is also a `human` score
on that trace (so explain, monitors and the dashboard see it). Adding the same items twice queues them once.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pilothouse.audit.chain import append_event
from pilothouse.errors import Conflict, InvalidRequest, NotFound
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store import annotations as repo
from pilothouse.store import datasets as dataset_repo
from pilothouse.store import experiments as experiment_repo
from pilothouse.store.scores import add_score
from pilothouse.store.traces import get_trace
from pilothouse.tracing.explain import explain_trace

router = APIRouter(prefix="/api/evals/queues", tags=["annotations"])

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class ScoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$", description="The score's name on traces.")
    data_type: Literal["numeric", "boolean", "categorical"]
    categories: list[str] | None = Field(default=None, min_length=2, max_length=50)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _fits(self) -> ScoreConfig:
        if (self.data_type == "categorical") != (self.categories is not None):
            raise ValueError("categories are given exactly for a categorical score")
        if self.data_type != "numeric" and (self.min is not None or self.max is not None):
            raise ValueError("min and max apply to a numeric score")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self


class QueueCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    description: str | None = Field(default=None, max_length=2000)
    score: ScoreConfig


class ItemsAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_ids: list[str] = Field(default_factory=list, max_length=1000)
    experiment_id: str | None = Field(default=None, max_length=40)
    variant: str | None = Field(default=None, max_length=100, description="Only this variant's results.")
    limit: int = Field(default=1000, ge=1, le=10_000)
    assignee: str | None = Field(default=None, max_length=200, description="Who should answer them (a person).")

    @model_validator(mode="after")
    def _something(self) -> ItemsAdd:
        if not self.trace_ids and self.experiment_id is None:
            raise ValueError("give trace_ids or an experiment_id")
        return self


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    value: float | bool | None = None
    category: str | None = Field(default=None, max_length=200)
    skip: bool = False
    comment: str | None = Field(default=None, max_length=10_000)


def _queue(conn: Any, project_id: str, name: str) -> repo.QueueRow:
    queue = repo.get_queue(conn, project_id, name)
    if queue is None:
        raise NotFound(f"no annotation queue named {name!r} in this project", code="queue_not_found")
    return queue


@router.post("", status_code=201)
async def create_queue(body: QueueCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "developer")

    def write() -> dict[str, Any]:
        with state.store.begin() as conn:
            if repo.get_queue(conn, principal.project_id, body.name) is not None:
                raise Conflict(f"the project already has a queue named {body.name!r}", code="queue_exists")
            queue = repo.create_queue(
                conn,
                project_id=principal.project_id,
                name=body.name,
                description=body.description,
                score=body.score.model_dump(exclude_none=True),
                actor=principal.key_id,
            )
            append_event(
                conn, actor=principal.key_id, action="queue.create", target=body.name, project_id=principal.project_id
            )
        return {"name": queue.name, "description": queue.description, "score": queue.score}

    return await asyncio.to_thread(write)


@router.get("")
async def list_queues(state: StateDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    require_role(principal, "viewer")

    def read() -> list[dict[str, Any]]:
        with state.store.connect() as conn:
            found = repo.list_queues(conn, principal.project_id)
        return [{"name": q.name, "description": q.description, "score": q.score, "tasks": n} for q, n in found]

    return await asyncio.to_thread(read)


@router.post("/{name}/items")
async def add_items(name: str, body: ItemsAdd, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Queue traces (by id) and/or an experiment's results; those already queued are skipped."""
    require_role(principal, "developer")

    def write() -> dict[str, Any]:
        targets: list[dict[str, Any]] = []
        with state.store.begin() as conn:
            queue = _queue(conn, principal.project_id, name)
            for trace_id in dict.fromkeys(body.trace_ids):
                if get_trace(conn, principal.project_id, trace_id) is None:
                    raise NotFound(f"no trace {trace_id!r} in this project", code="trace_not_found")
                targets.append({"target": f"trace:{trace_id}", "trace_id": trace_id})
            if body.experiment_id is not None:
                experiment = experiment_repo.get_experiment(conn, principal.project_id, body.experiment_id)
                if experiment is None:
                    raise NotFound(f"no experiment {body.experiment_id!r} in this project", code="experiment_not_found")
                rows = experiment_repo.results(conn, experiment.id, variant=body.variant)
                for row in [r for r in rows if r.status == "ok"][: body.limit]:
                    targets.append(
                        {
                            "target": f"result:{experiment.id}/{row.variant}/{row.item_id}",
                            "experiment_id": experiment.id,
                            "variant": row.variant,
                            "item_id": row.item_id,
                            "trace_id": row.trace_id,
                        }
                    )
            added = repo.add_tasks(conn, queue.id, targets, assignee=body.assignee)
        return {"added": added, "already_queued": len(targets) - added}

    return await asyncio.to_thread(write)


def _material(state: AppState, principal: Principal, task: repo.TaskRow) -> dict[str, Any]:
    """What the person needs to see: the question, the answer, the reference and context."""
    with state.store.connect() as conn:
        if task.experiment_id is not None:
            experiment = experiment_repo.get_experiment(conn, principal.project_id, task.experiment_id)
            rows = [] if experiment is None else experiment_repo.results(conn, experiment.id, variant=task.variant)
            row = next((r for r in rows if r.item_id == task.item_id), None)
            item: dict[str, Any] = {}
            if experiment is not None:
                version = dataset_repo.get_version(conn, experiment.dataset_id, experiment.dataset_version)
                items = [] if version is None else dataset_repo.version_items(conn, version.id)
                item = next((i for i in items if str(i["id"]) == task.item_id), {})
            return {
                "input": item.get("input"),
                "expected": item.get("expected"),
                "context": item.get("context"),
                "output": None if row is None else row.output,
            }
        found = explain_trace(conn, principal.project_id, task.trace_id or "")
    if found is None:
        return {"input": None, "output": None, "note": "the trace is gone (retention)"}
    prompt = found["prompt"]
    chunks = [c["text"] for r in found["retrieval"] for c in r["chunks"]]
    return {
        "input": prompt.get("variables") or prompt.get("messages"),
        "output": found["answer"],
        "context": chunks or None,
    }


@router.get("/{name}/next")
async def next_task(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    assignee: Annotated[str | None, Query(max_length=200, description="Your name: your tasks first.")] = None,
) -> dict[str, Any]:
    """The next open task with what to judge (`task` null when the queue is done)."""
    require_role(principal, "service")

    def read() -> dict[str, Any]:
        with state.store.connect() as conn:
            queue = _queue(conn, principal.project_id, name)
            task = repo.next_task(conn, queue.id, assignee=assignee)
        if task is None:
            return {"task": None, "score": queue.score}
        return {"task": task.to_dict(), "score": queue.score, "show": _material(state, principal, task)}

    return await asyncio.to_thread(read)


def _checked(score: dict[str, Any], answer: Answer) -> tuple[float | None, str | None]:
    kind = score["data_type"]
    if kind == "categorical":
        if answer.category is None or answer.value is not None:
            raise InvalidRequest(f"answer with a `category`: one of {', '.join(score['categories'])}", param="category")
        if answer.category not in score["categories"]:
            raise InvalidRequest(
                f"{answer.category!r} is not a category of this queue ({', '.join(score['categories'])})",
                param="category",
            )
        return None, answer.category
    if answer.value is None or answer.category is not None:
        raise InvalidRequest(f"answer with a `value` ({kind})", param="value")
    if kind == "boolean":
        if not isinstance(answer.value, bool):
            raise InvalidRequest("answer with true or false", param="value")
        return float(answer.value), None
    if isinstance(answer.value, bool):
        raise InvalidRequest("answer with a number", param="value")
    low, high = score.get("min"), score.get("max")
    if (low is not None and answer.value < low) or (high is not None and answer.value > high):
        raise InvalidRequest(f"the value must be between {low} and {high}", param="value")
    return float(answer.value), None


@router.post("/{name}/tasks/{task_id}")
async def answer_task(
    name: str, task_id: str, body: Answer, state: StateDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Answer (or `skip`) an open task; on a trace the answer is also a `human` score of the queue's name."""
    require_role(principal, "service")

    def write() -> dict[str, Any]:
        with state.store.begin() as conn:
            queue = _queue(conn, principal.project_id, name)
            task = repo.get_task(conn, queue.id, task_id)
            if task is None:
                raise NotFound(f"no task {task_id!r} in queue {name!r}", code="task_not_found")
            value, category = (None, None) if body.skip else _checked(queue.score, body)
            status = "skipped" if body.skip else "done"
            if not repo.submit(
                conn,
                task.id,
                status=status,
                value=value,
                string_value=category,
                comment=body.comment,
                annotator=principal.key_id,
            ):
                raise Conflict(f"task {task_id} was already answered", code="task_closed")
            if status == "done" and task.trace_id is not None and task.experiment_id is None:
                add_score(
                    conn,
                    project_id=principal.project_id,
                    trace_id=task.trace_id,
                    name=queue.score["name"],
                    value=value,
                    string_value=category,
                    source="human",
                    comment=body.comment,
                    author=principal.key_id,
                    data_type=queue.score["data_type"],
                )
        return {"task": task_id, "status": status, "value": value, "category": category}

    return await asyncio.to_thread(write)
