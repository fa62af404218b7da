"""/api/feedback: end users' thumbs up or down (and a comment) on a trace, sent by the application for them.

Service keys and up: the application's backend relays what its user clicked. Each feedback is also the boolean
score `feedback` of the trace (1 up, 0 down), committed before the 201 answer (store/feedback.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.store.feedback import Thumbs, add_feedback
from pilothouse.store.scores import ScoreTargetMissing

router = APIRouter(prefix="/api/feedback", tags=["feedback"])


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str = Field(min_length=1, max_length=32, description="The x-pilothouse-trace-id of the answer.")
    thumbs: Thumbs = Field(description="up or down.")
    comment: str | None = Field(default=None, max_length=10_000, description="What the end user wrote.")
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The end user who gave it, as your application names them.",
    )


@router.post("", status_code=201)
def create(body: FeedbackCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Record an end user's feedback on a trace of the caller's project."""
    require_role(principal, "service")
    try:
        with state.store.begin() as conn:
            row = add_feedback(
                conn,
                project_id=principal.project_id,
                trace_id=body.trace_id,
                thumbs=body.thumbs,
                comment=body.comment,
                user_id=body.user_id,
                author=principal.key_id,
            )
    except ScoreTargetMissing as exc:
        raise NotFound(str(exc), param=exc.param) from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    return row.to_dict()
