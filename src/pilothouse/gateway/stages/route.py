"""The route stage (last): make the upstream call (gateway/routing: deployments, retries, fallbacks, circuit
breakers, the deadline) and meter it. It answers itself; no stage runs after it.

The caller's hooks run around the upstream call: `before_upstream` may stop it (CallerLeft), and while it is
awaited the caller may cancel it. A stream is returned once its first event arrived, so a failure before any
byte is an ApiError (a proper error status) and one after it an SSE error event.
"""

from __future__ import annotations

from pilothouse.gateway.prepared import PreparedEmbeddings
from pilothouse.gateway.stages.base import CallNext, Events, Outcome, RequestContext, Services


class RouteStage:
    def __init__(self, services: Services) -> None:
        self.gateway = services.gateway

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        prep, gateway = ctx.prepared(), self.gateway
        ctx.before_upstream()
        try:
            if isinstance(prep, PreparedEmbeddings):
                return Outcome(ctx.trace, payload=await gateway.embed(prep), span=prep.span)
            if prep.body.stream:
                events = gateway.chat_stream(prep)
                first = await anext(events, None)  # raises ApiError before any byte is sent
                return Outcome(ctx.trace, events=events if first is None else _prepend(first, events), span=prep.span)
            payload = await gateway.chat(prep)
        finally:
            ctx.after_upstream()
        prep.span.finish()
        return Outcome(ctx.trace, payload=payload, span=prep.span)


async def _prepend(first: bytes, rest: Events) -> Events:
    try:
        yield first
        async for event in rest:
            yield event
    finally:
        await rest.aclose()  # a stream closed early meters what it used
