"""The overall deadline of one request's upstream work (`routing.call_deadline_s`, or a model's own).

A deployment's `timeout_s` bounds the gap between two reads, so an upstream that sends a byte a second, or
a stream of SSE keep-alive comments, never trips it. The deadline bounds the whole: every attempt, backoff
and fallback of a request, and a stream to its end. The route stage runs under it (`asyncio.timeout_at`),
does not start an attempt or a backoff that would end after it, and wraps a stream's chunks so that each
read is cut at the same instant. A call cut by the deadline (or cancelled because the client left) is
cancelled for real: its connection is closed, so the upstream stops generating.

A cut call's tokens are unknown (the upstream may have generated and billed some), so its span gets the
attributes `pilothouse.upstream.cancelled` (why: `deadline_exceeded`, `cancelled`) and
`pilothouse.upstream.usage_unknown` = true, and the router meters it at its worst case (input bound plus
output bound, `pilothouse.usage.charged_at` = `worst_case`): the trace and the budget carry the most it can
have cost, never zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from pilothouse.errors import ApiError, UpstreamTimeout
from pilothouse.gateway.providers.base import Chunk, ProviderError
from pilothouse.tracing.model import SpanRecord

CANCELLED = "pilothouse.upstream.cancelled"
USAGE_UNKNOWN = "pilothouse.upstream.usage_unknown"
SHOULD_RETRY = "x-should-retry"


class Deadline:
    """When one request's upstream work must end, and which attempt's call is awaited now."""

    __slots__ = ("at", "in_flight", "loop_at", "seconds")

    def __init__(self, seconds: float, now: float) -> None:
        self.seconds = seconds
        self.at = now + seconds  # on the router's clock (monotonic)
        self.loop_at = asyncio.get_running_loop().time() + seconds  # the same instant on the event loop's clock
        self.in_flight: SpanRecord | None = None

    def leaves_time(self, now: float, wait_s: float) -> bool:
        """Whether an attempt that starts after waiting `wait_s` would start before the deadline."""
        return now + wait_s < self.at

    def describe(self) -> str:
        return f"the call deadline of {self.seconds:g}s (routing.call_deadline_s, or call_deadline_s on the model)"


def deadline_error(deadline: Deadline) -> ApiError:
    """The caller's 504: the gateway already spent the whole deadline, so a client retry is not wanted."""
    return UpstreamTimeout(
        f"the upstream call did not finish within {deadline.describe()}, every attempt and retry included",
        code="deadline_exceeded",
        headers={SHOULD_RETRY: "false"},
    )


class DeadlineExceeded(ProviderError):
    """A stream cut by its deadline after its first chunk: it ends with an SSE error event (504
    `deadline_exceeded`), like any failure once bytes were sent."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__("timeout", deadline_error(deadline).message, status=504)


def mark_cut(span: SpanRecord, why: str) -> None:
    """An attempt whose call was cut mid-way: no usage came back, and the upstream may have spent some."""
    span.attributes[CANCELLED] = why
    span.attributes[USAGE_UNKNOWN] = True
    span.input_tokens = None
    span.output_tokens = None
    span.cost_usd = None


def mark_not_sent(span: SpanRecord, why: str) -> None:
    """An attempt begun (after a backoff was chosen) whose call never went out: it spent nothing."""
    span.attributes[CANCELLED] = why
    span.attributes["pilothouse.attempt.not_sent"] = True
    span.input_tokens = 0
    span.output_tokens = 0


async def bounded(chunks: AsyncIterator[Chunk], deadline: Deadline, span: SpanRecord) -> AsyncGenerator[Chunk, None]:
    """`chunks`, each read cut at the deadline (then DeadlineExceeded, after marking `span`). Closes
    `chunks` when the consumer stops early, so the upstream connection is released at once."""
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline.loop_at):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                span.attributes[CANCELLED] = "deadline_exceeded"
                raise DeadlineExceeded(deadline) from None
            yield chunk
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
