"""Budget and rate-limit definitions (the `budgets` and `rate_limits` tables) and spend read from traces.

Definitions are few and change rarely: the gateway reads them all at once into an in-process index
(gateway/limits/definitions.py) and never queries them per request. The current spend is not stored here
but in the LimitStore; `spend_since` reads it back from the traces, to seed a new budget with what its
subject already spent in the current period.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from sqlalchemy import BigInteger, Connection, delete, func, insert, select, update

from pilothouse.money import from_pico
from pilothouse.store.ids import new_id
from pilothouse.store.tables import budgets, rate_limits, traces

BudgetScope = Literal["key", "project", "user", "prompt"]
LimitScope = Literal["key", "project", "model"]
Period = Literal["day", "month", "total"]
Mode = Literal["hard", "soft"]
BUDGET_SCOPES: tuple[str, ...] = get_args(BudgetScope)
LIMIT_SCOPES: tuple[str, ...] = get_args(LimitScope)
PERIODS: tuple[str, ...] = get_args(Period)
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True, slots=True)
class Budget:
    id: str
    project_id: str
    scope: str
    subject: str
    period: str
    limit_usd: Decimal
    mode: str
    created_at: float
    created_by: str | None
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "scope": self.scope,
            "subject": self.subject,
            "period": self.period,
            "limit_usd": str(self.limit_usd),
            "mode": self.mode,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class RateLimit:
    id: str
    project_id: str
    scope: str
    subject: str
    rpm: int | None
    tpm: int | None
    max_tokens: int | None
    created_at: float
    created_by: str | None
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "scope": self.scope,
            "subject": self.subject,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "max_tokens": self.max_tokens,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
        }


def _budget(row: Any) -> Budget:
    return Budget(
        id=row.id,
        project_id=row.project_id,
        scope=row.scope,
        subject=row.subject,
        period=row.period,
        limit_usd=row.limit_usd,
        mode=row.mode,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


def _limit(row: Any) -> RateLimit:
    return RateLimit(
        id=row.id,
        project_id=row.project_id,
        scope=row.scope,
        subject=row.subject,
        rpm=row.rpm,
        tpm=row.tpm,
        max_tokens=row.max_tokens,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


def set_budget(
    conn: Connection,
    *,
    project_id: str,
    scope: str,
    subject: str,
    period: str,
    limit_usd: Decimal,
    mode: str,
    actor: str | None,
) -> tuple[Budget, bool]:
    """Create the budget of (scope, subject, period) or change its limit and mode; (budget, created)."""
    if scope not in BUDGET_SCOPES or period not in PERIODS or mode not in MODES:
        raise ValueError(f"invalid budget: scope={scope!r} period={period!r} mode={mode!r}")
    if limit_usd < 0:
        raise ValueError("a budget's limit must not be negative")
    now = time.time()
    existing = conn.execute(
        select(budgets.c.id).where(
            budgets.c.project_id == project_id,
            budgets.c.scope == scope,
            budgets.c.subject == subject,
            budgets.c.period == period,
        )
    ).first()
    if existing is None:
        budget_id = new_id("bud")
        conn.execute(
            insert(budgets).values(
                id=budget_id,
                project_id=project_id,
                scope=scope,
                subject=subject,
                period=period,
                limit_usd=limit_usd,
                mode=mode,
                created_at=now,
                created_by=actor,
                updated_at=now,
            )
        )
    else:
        budget_id = existing.id
        conn.execute(
            update(budgets).where(budgets.c.id == budget_id).values(limit_usd=limit_usd, mode=mode, updated_at=now)
        )
    budget = get_budget(conn, budget_id)
    assert budget is not None
    return budget, existing is None


def get_budget(conn: Connection, budget_id: str) -> Budget | None:
    row = conn.execute(select(budgets).where(budgets.c.id == budget_id)).first()
    return None if row is None else _budget(row)


def list_budgets(conn: Connection, *, project_id: str | None = None) -> list[Budget]:
    query = select(budgets).order_by(budgets.c.created_at)
    if project_id is not None:
        query = query.where(budgets.c.project_id == project_id)
    return [_budget(r) for r in conn.execute(query)]


def delete_budget(conn: Connection, budget_id: str) -> bool:
    return conn.execute(delete(budgets).where(budgets.c.id == budget_id)).rowcount == 1


def set_rate_limit(
    conn: Connection,
    *,
    project_id: str,
    scope: str,
    subject: str,
    rpm: int | None,
    tpm: int | None,
    max_tokens: int | None,
    actor: str | None,
) -> tuple[RateLimit, bool]:
    """Set (replace) the limits of (scope, subject): the fields left None are no longer limited."""
    if scope not in LIMIT_SCOPES:
        raise ValueError(f"invalid limit scope {scope!r}")
    if rpm is None and tpm is None and max_tokens is None:
        raise ValueError("give at least one of rpm, tpm, max_tokens")
    if any(v is not None and v < 1 for v in (rpm, tpm, max_tokens)):
        raise ValueError("rpm, tpm and max_tokens must be positive")
    now = time.time()
    existing = conn.execute(
        select(rate_limits.c.id).where(
            rate_limits.c.project_id == project_id,
            rate_limits.c.scope == scope,
            rate_limits.c.subject == subject,
        )
    ).first()
    values = {"rpm": rpm, "tpm": tpm, "max_tokens": max_tokens, "updated_at": now}
    if existing is None:
        limit_id = new_id("lim")
        conn.execute(
            insert(rate_limits).values(
                id=limit_id,
                project_id=project_id,
                scope=scope,
                subject=subject,
                created_at=now,
                created_by=actor,
                **values,
            )
        )
    else:
        limit_id = existing.id
        conn.execute(update(rate_limits).where(rate_limits.c.id == limit_id).values(**values))
    limit = get_rate_limit(conn, limit_id)
    assert limit is not None
    return limit, existing is None


def get_rate_limit(conn: Connection, limit_id: str) -> RateLimit | None:
    row = conn.execute(select(rate_limits).where(rate_limits.c.id == limit_id)).first()
    return None if row is None else _limit(row)


def list_rate_limits(conn: Connection, *, project_id: str | None = None) -> list[RateLimit]:
    query = select(rate_limits).order_by(rate_limits.c.created_at)
    if project_id is not None:
        query = query.where(rate_limits.c.project_id == project_id)
    return [_limit(r) for r in conn.execute(query)]


def delete_rate_limit(conn: Connection, limit_id: str) -> bool:
    return conn.execute(delete(rate_limits).where(rate_limits.c.id == limit_id)).rowcount == 1


def spend_since(conn: Connection, *, project_id: str, scope: str, subject: str, since: float) -> Decimal:
    """What the subject's traces cost from `since` (epoch seconds) on."""
    column = {
        "key": traces.c.api_key_id,
        "project": traces.c.project_id,
        "user": traces.c.user_id,
        "prompt": traces.c.prompt_name,
    }[scope]
    query = select(func.sum(traces.c.cost_usd, type_=BigInteger)).where(
        traces.c.project_id == project_id, traces.c.started_at >= since, column == subject
    )
    return from_pico(int(conn.execute(query).scalar_one() or 0))
