"""The admission stage: rate limits, budget reservations, run caps and max_tokens caps in one limit-store call
(gateway/admission.py). A refusal is an ApiError (no cache lookup, no upstream call); an admitted call holds a
ticket that the settle stage settles."""

from __future__ import annotations

from pilothouse.gateway.stages.base import CallNext, Outcome, RequestContext, Services


class AdmissionStage:
    def __init__(self, services: Services) -> None:
        self.admission = services.admission

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        if self.admission is not None:
            ctx.ticket = await self.admission.admit(ctx.prepared(), ctx.trace, ctx.call.headers)
        return await call_next(ctx)
