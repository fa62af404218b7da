"""One step's attempts: the retry policy with backoff, the per-attempt timeout (capped by the run's wall-time
budget) and the step's span."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pilothouse.flows.errors import NON_RETRYABLE, BudgetExceeded, StepTimeout
from pilothouse.flows.policy import StepOptions
from pilothouse.flows.steps.base import StepResult
from pilothouse.tracing.model import SpanRecord

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Outcome:
    """How a step's attempts went: the result of the last one, or the error that ended them."""

    result: StepResult | None
    error: BaseException | None
    attempts: int
    started_at: float
    ended_at: float
    span: SpanRecord
    errors: list[str] = field(default_factory=list)  # every failed attempt's error, in order


async def attempt(
    run_once: Callable[[int], Awaitable[StepResult]],
    *,
    name: str,
    options: StepOptions,
    span: SpanRecord,
    wall_left: Callable[[], float | None],
    sleep: Sleep = asyncio.sleep,
) -> Outcome:
    """Call `run_once(attempt_number)` until it succeeds or the retry policy gives up."""
    retry = options.retry
    started = time.time()
    errors: list[str] = []
    number = 0
    while True:
        number += 1
        try:
            result = await _timed(run_once(number), name=name, timeout_s=options.timeout_s, wall_left=wall_left())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            if not retryable(exc) or number >= retry.attempts or not retry.retries(exc):
                return Outcome(None, exc, number, started, time.time(), span, errors)
            await sleep(retry.delay(number))
            continue
        return Outcome(result, None, number, started, time.time(), span, errors)


def retryable(exc: BaseException) -> bool:
    """Whether another attempt may help: not for the flow errors no retry can fix (`NON_RETRYABLE`), nor for an
    error that says so itself with `retryable = False` (a refused or blocked tool call, a guard's block, an
    agent's cap, a model call the gateway refused with a 4xx)."""
    return not isinstance(exc, NON_RETRYABLE) and getattr(exc, "retryable", True) is not False


async def _timed(
    work: Awaitable[StepResult], *, name: str, timeout_s: float | None, wall_left: float | None
) -> StepResult:
    if timeout_s is None and wall_left is None:
        return await work
    limits = [t for t in (timeout_s, wall_left) if t is not None]
    limit = min(limits)
    try:
        return await asyncio.wait_for(work, timeout=limit)
    except TimeoutError:
        if wall_left is not None and limit == wall_left and (timeout_s is None or wall_left < timeout_s):
            raise BudgetExceeded(f"run budget wall_s exhausted while step {name!r} ran", limit="wall_s") from None
        raise StepTimeout(f"step {name!r} timed out after {limit:g}s") from None


def close_span(outcome: Outcome, *, output: Any = None, input: Any = None) -> None:
    span = outcome.span
    span.attributes["pilothouse.step.attempts"] = outcome.attempts
    if outcome.errors:
        span.attributes["pilothouse.step.errors"] = list(outcome.errors)
    span.input = input
    span.output = output
    if outcome.error is None:
        span.finish()
    else:
        span.finish(status="error", error=f"{type(outcome.error).__name__}: {outcome.error}")
