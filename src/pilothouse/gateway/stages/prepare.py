"""The prepare stage: validate the body (a prompt reference is expanded off the event loop), resolve the model,
choose the first deployment, check capabilities and the context window, open the call's span
(gateway/preparation.py). An invalid call is refused here (ApiError), before anything is reserved."""

from __future__ import annotations

from pilothouse.gateway.stages.base import CallNext, Outcome, RequestContext, Services


class PrepareStage:
    def __init__(self, services: Services) -> None:
        self.gateway = services.gateway

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        call = ctx.call
        if call.refusal is not None:
            raise call.refusal
        if call.kind == "embeddings":
            ctx.prep = self.gateway.prepare_embeddings(call.body, ctx.trace)
        elif ctx.prompt is not None:  # expanded by the RAG stage: no more database reads or template work
            ctx.prep = self.gateway.prepare_chat(call.body, ctx.trace, expanded=ctx.prompt)
        else:
            ctx.prep = await self.gateway.prepare_chat_async(call.body, ctx.trace)
        return await call_next(ctx)
