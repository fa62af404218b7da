"""The cache stage (chat only): look the call up (exact, then semantic) and answer a hit without routing; on a
miss, keep the answer the later stages produce (a stream's chunks once it ended well). See gateway/cache/."""

from __future__ import annotations

from pilothouse.gateway.prepared import Prepared
from pilothouse.gateway.stages.base import CallNext, Outcome, RequestContext, Services


class CacheStage:
    def __init__(self, services: Services) -> None:
        self.cache = services.cache

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        cache, prep, trace = self.cache, ctx.prep, ctx.trace
        if cache is None or not isinstance(prep, Prepared):
            return await call_next(ctx)
        policies = ctx.guard.fingerprint if ctx.guard is not None else ""  # the guard policy versions applied
        plan, hit = await cache.lookup_request(prep, trace, ctx.call.headers, policies=policies)
        if hit is not None:  # recorded as a `cache` span in place of the llm span
            span = trace.spans[-1]
            if prep.body.stream:
                outcome = Outcome(trace, events=hit.events(prep.body.include_usage), span=span)
            else:
                outcome = Outcome(trace, payload=hit.completion(), span=span)
        else:
            outcome = await call_next(ctx)
            if outcome.events is not None:
                outcome.events = cache.record_stream(plan, prep, trace, outcome.events)
            elif outcome.payload is not None:
                await cache.store_completion(plan, prep, trace, outcome.payload)
        outcome.headers.update(plan.headers())
        return outcome
