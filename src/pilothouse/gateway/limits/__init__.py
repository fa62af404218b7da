"""Rate limits, budgets and loop guards: the shared state behind the gateway's admission stage.

`store.LimitStore` is the one interface (memory and Redis backends); `rate_limits`, `budgets` and
`loop_guard` turn definitions into checks on it; `gateway/admission.py` runs them per request.
"""

from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.gateway.limits.redis_store import RedisLimitStore
from pilothouse.gateway.limits.store import (
    CounterSettle,
    CounterSpec,
    CounterState,
    Hold,
    LimitStore,
    LimitStoreUnavailable,
    Refusal,
    WindowSettle,
    WindowSpec,
)

__all__ = [
    "CounterSettle",
    "CounterSpec",
    "CounterState",
    "Hold",
    "LimitStore",
    "LimitStoreUnavailable",
    "MemoryLimitStore",
    "RedisLimitStore",
    "Refusal",
    "WindowSettle",
    "WindowSpec",
]
