"""The settle stage (second): what admission reserved is replaced by what the call used, on every path.

After a whole answer or an error, before the trace stage stores the trace; after a stream's last event, or
once a stream the caller abandoned is closed (the model call meters what it used first). Settling reads the
trace's totals, so it sees a call cut mid-way charged at its worst case and a failed call at zero.
"""

from __future__ import annotations

from pilothouse.gateway.stages.base import CallNext, Events, Outcome, RequestContext, Services


class SettleStage:
    def __init__(self, services: Services) -> None:
        del services  # settling needs only the context's ticket

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        try:
            outcome = await call_next(ctx)
        except BaseException:
            await ctx.settle()
            raise
        if outcome.events is None:
            await ctx.settle()
        else:
            outcome.events = _settled_after(ctx, outcome.events)
        return outcome


async def _settled_after(ctx: RequestContext, events: Events) -> Events:
    try:
        async for event in events:
            yield event
    finally:
        await events.aclose()  # an abandoned stream meters what it used before it is settled
        await ctx.settle()
