"""The trace stage (first): the call's trace is stored exactly once, whatever happens.

A whole answer or an error: stored before the outcome is returned, so the trace is readable the moment the
caller has the answer. A stream: stored when its last event has been relayed (the caller sends `[DONE]` after
that), or, when the caller stops reading, as abandoned once the stream is closed. An ApiError from any later
stage (a refusal, an upstream failure) is recorded on the trace and returned as the outcome's error; an
unexpected exception becomes a 500 `internal_error` the same way. A caller that left before the upstream call
(CallerLeft) or while it was awaited (a cancellation its hooks absorb) leaves an abandoned trace, and any other
cancellation one whose open spans end as "request ended before the call completed".
"""

from __future__ import annotations

import asyncio
import logging

from pilothouse.errors import ApiError
from pilothouse.gateway.call import CallerLeft
from pilothouse.gateway.stages.base import CallNext, Events, Outcome, RequestContext, Services
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import TraceSink

log = logging.getLogger("pilothouse.gateway")


def record_failure(trace: TraceRecord, error: ApiError) -> None:
    """Put a refusal or failure on the trace: on its open model span if there is one, else on a request step
    span."""
    open_spans = [s for s in trace.spans if s.ended_at is None]
    span = open_spans[-1] if open_spans else trace.span("step", "request")
    span.attributes["error.type"] = error.code or error.type
    span.attributes["http.response.status_code"] = error.status
    span.finish(status="error", error=error.message)
    trace.status = "error"


def record_abandoned(trace: TraceRecord) -> None:
    """The caller left while the upstream call was awaited (the call was cancelled; the router marked the
    attempt it cut: `pilothouse.upstream.cancelled`, usage unknown) or before it started (none was made)."""
    for span in trace.spans:
        if span.ended_at is None:
            span.attributes["pilothouse.client_disconnected"] = True
            span.finish(
                status="error", error="the client disconnected before the answer; the upstream call was cancelled"
            )
    trace.status = "error"


def internal_error(exc: Exception, trace_id: str) -> ApiError:
    """A bug of ours, in the API's error shape, with the trace id to quote."""
    error = ApiError(
        f"internal error ({type(exc).__name__}); quote trace id {trace_id} when reporting it",
        status=500,
        code="internal_error",
    )
    error.type = "api_error"
    return error


class _TraceOnce:
    """Stores one trace exactly once, even when the await is cancelled (the write is enqueued at once)."""

    __slots__ = ("parent_span_id", "sink", "stored", "trace")

    def __init__(self, sink: TraceSink, trace: TraceRecord, parent_span_id: str | None = None) -> None:
        self.sink = sink
        self.trace = trace
        self.parent_span_id = parent_span_id
        self.stored = False

    async def store(self) -> None:
        if self.stored:
            return
        self.stored = True
        self.trace.finish()
        if self.parent_span_id is not None:  # a caller's traceparent: our top-level spans nest under its span
            for span in self.trace.spans:
                if span.parent_id is None:
                    span.parent_id = self.parent_span_id
        await asyncio.shield(self.sink.write(self.trace))

    async def store_abandoned(self) -> None:
        for span in self.trace.spans:
            if span.ended_at is None:
                span.finish(status="error", error="request ended before the call completed")
                self.trace.status = "error"
        await self.store()


class TraceStage:
    def __init__(self, services: Services) -> None:
        self.sink = services.sink

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        trace = ctx.trace
        once = _TraceOnce(self.sink, trace, ctx.call.parent_span_id)
        try:
            outcome = await call_next(ctx)
        except ApiError as exc:
            record_failure(trace, exc)
            await once.store()
            return Outcome(trace, error=exc)
        except CallerLeft:
            record_abandoned(trace)
            await once.store()
            raise
        except asyncio.CancelledError:
            if not ctx.hooks.absorbs_cancel():
                await once.store_abandoned()
                raise
            record_abandoned(trace)  # the caller left while the call was awaited: it was cancelled
            await once.store()
            raise CallerLeft from None
        except Exception as exc:
            log.exception("unexpected error in a %s call (trace %s)", ctx.call.kind, trace.id)
            error = internal_error(exc, trace.id)
            record_failure(trace, error)
            await once.store()
            return Outcome(trace, error=error)
        if outcome.events is None:
            await once.store()
        else:
            outcome.events = _stored_after(once, outcome.events)
        return outcome


async def _stored_after(once: _TraceOnce, events: Events) -> Events:
    """Relay a stream; store its trace once it ended (before the caller's `[DONE]`), or as abandoned when the
    caller closed it early (the inner stages meter and settle what was used first)."""
    ended = False
    try:
        async for event in events:
            yield event
        ended = True
    except Exception as exc:  # a bug after the first event: the status line is sent, so it can only be traced
        error = exc if isinstance(exc, ApiError) else internal_error(exc, once.trace.id)
        if not isinstance(exc, ApiError):
            log.exception("unexpected error in a stream (trace %s)", once.trace.id)
        record_failure(once.trace, error)
        raise
    finally:
        await events.aclose()
        if ended:
            await once.store()
        else:
            await once.store_abandoned()
