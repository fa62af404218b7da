"""/api/scores: record feedback and evaluation scores on traces and spans, and list them.

A score is numeric (`value` a number), boolean (`value` true or false, stored as 1.0 / 0.0) or categorical
(`string_value`); `data_type` says which (inferred when left out). A score is committed before the 201 answer, so
an acknowledged score is never lost.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.store.scores import DataType, ScoreTargetMissing, add_score, list_scores
from pilothouse.store.traces import BadCursor

router = APIRouter(prefix="/api/scores", tags=["scores"])


def _number_or_boolean(schema: dict[str, Any]) -> None:
    """`value` as the API takes it: a number, true / false, or null."""
    schema.pop("anyOf", None)
    schema["type"] = ["number", "boolean", "null"]


class ScoreCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    trace_id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    value: float | None = Field(
        default=None,
        description="A number (e.g. 0.8); true or false (JSON booleans) make a boolean score, stored as 1 / 0.",
        json_schema_extra=_number_or_boolean,
    )
    string_value: str | None = Field(default=None, min_length=1, max_length=1000, description="A category.")
    source: Literal["human", "code", "judge"] = "human"
    data_type: DataType | None = Field(
        default=None, description="numeric, boolean or categorical; by default from the value's JSON type."
    )
    comment: str | None = Field(default=None, max_length=10_000)
    span_id: str | None = Field(default=None, min_length=1, max_length=16)

    @model_validator(mode="before")
    @classmethod
    def _booleans(cls, data: Any) -> Any:
        """A JSON true/false `value` is a boolean score (the field itself stays a number: 1.0 or 0.0)."""
        if isinstance(data, dict) and isinstance(data.get("value"), bool):
            data = {**data, "value": float(data["value"])}
            if data.get("data_type") is None:
                data["data_type"] = "boolean"
        return data

    @model_validator(mode="after")
    def _one_value(self) -> ScoreCreate:
        if (self.value is None) == (self.string_value is None):
            raise ValueError("send exactly one of 'value' (a number) or 'string_value' (a category)")
        return self


@router.post("", status_code=201)
def create(body: ScoreCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Attach a score to a trace of the caller's project (service keys and up)."""
    require_role(principal, "service")
    try:
        with state.store.begin() as conn:
            score = add_score(
                conn,
                project_id=principal.project_id,
                trace_id=body.trace_id,
                name=body.name,
                value=body.value,
                string_value=body.string_value,
                source=body.source,
                comment=body.comment,
                author=principal.key_id,
                span_id=body.span_id,
                data_type=body.data_type,
            )
    except ScoreTargetMissing as exc:
        raise NotFound(str(exc), param=exc.param) from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    return score.to_dict()


@router.get("")
def list_all(
    state: StateDep,
    principal: PrincipalDep,
    trace_id: str | None = None,
    span_id: str | None = None,
    name: str | None = None,
    source: Literal["human", "code", "judge"] | None = None,
    data_type: DataType | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Scores of the caller's project, newest first, filtered by trace, span, name, source and data type."""
    try:
        with state.store.connect() as conn:
            page, next_cursor = list_scores(
                conn,
                principal.project_id,
                trace_id=trace_id,
                span_id=span_id,
                name=name,
                source=source,
                data_type=data_type,
                limit=limit,
                cursor=cursor,
            )
    except BadCursor as exc:
        raise InvalidRequest(str(exc), param="cursor") from exc
    return {"data": [s.to_dict() for s in page], "next_cursor": next_cursor}
