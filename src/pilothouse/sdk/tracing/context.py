"""Which span is current: a `ContextVar`, so nesting follows the code through `await` and `asyncio` tasks.

asyncio copies the context into every task it creates, so spans nest across tasks with no help. Threads start
with an empty context: `carry(fn)` (or `ContextExecutor`) hands the caller's current span to the worker, so a
span opened in the worker nests under the span that submitted it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pilothouse.sdk.tracing.traceparent import TraceParent

if TYPE_CHECKING:
    from pilothouse.sdk.tracing.spans import Span

P = ParamSpec("P")
R = TypeVar("R")

current: ContextVar[Span | None] = ContextVar("pilothouse_span", default=None)


def current_span() -> Span | None:
    """The innermost open span of this context, or None outside any span."""
    return current.get()


def current_traceparent() -> TraceParent | None:
    """The current span as a W3C traceparent (to send to another service), or None outside any span."""
    span = current.get()
    return None if span is None else TraceParent(span.trace.id, span.id)


def carry(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn`, running under the span that is current now (for `threading.Thread(target=...)` and pools).

    The span is set for each call and reset after it, so one carried function may run in many threads at once."""
    parent = current.get()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        token = current.set(parent)
        try:
            return fn(*args, **kwargs)
        finally:
            current.reset(token)

    return run


class ContextExecutor(ThreadPoolExecutor):
    """A `ThreadPoolExecutor` whose tasks nest under the span that submitted them."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(carry(fn), *args, **kwargs)
