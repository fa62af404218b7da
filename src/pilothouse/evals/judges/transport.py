"""How a judge reaches a model.

Inside the server (experiment runs, uploads) the runner sets `current_transport` to a `PipelineTransport`: the
judge's calls go through `Pipeline.run` like every other call (budgets, limits, cache, traces; source `eval`, tag
`judge`). Elsewhere (the pytest plugin, a script) the default is `HttpTransport`: the gateway over HTTP with the
official `openai` client, at `PILOTHOUSE_URL` with `PILOTHOUSE_API_KEY`. Metrics run in worker threads, so the
pipeline transport hands each call to the server's event loop and waits for it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from pilothouse.evals.judges.spend import record

if TYPE_CHECKING:
    from pilothouse.gateway.pipeline import Pipeline
    from pilothouse.principal import Principal

__all__ = ["HttpTransport", "JudgeCallFailed", "JudgeTransport", "PipelineTransport", "current_transport", "transport"]

CALL_TIMEOUT_S = 120.0


class JudgeCallFailed(Exception):
    """The model call itself failed (refused, upstream error): the judgement fails with this message."""


class JudgeTransport(Protocol):
    def complete(self, messages: Sequence[Mapping[str, str]], *, model: str, params: Mapping[str, Any]) -> str:
        """The model's answer text; JudgeCallFailed when the call fails."""
        ...


current_transport: ContextVar[JudgeTransport | None] = ContextVar("pilothouse_judge_transport", default=None)


class PipelineTransport:
    def __init__(self, pipeline: Pipeline, principal: Principal, loop: asyncio.AbstractEventLoop, session: str) -> None:
        self.pipeline, self.principal, self.loop, self.session = pipeline, principal, loop, session

    def complete(self, messages: Sequence[Mapping[str, str]], *, model: str, params: Mapping[str, Any]) -> str:
        from pilothouse.gateway.call import GatewayCall

        call = GatewayCall(
            kind="chat",
            body={**params, "model": model, "messages": [dict(m) for m in messages]},
            principal=self.principal,
            source="eval",
            session_id=self.session,
            tags=("eval", "judge"),
            trace_name="eval.judge",
        )
        future = asyncio.run_coroutine_threadsafe(self.pipeline.run(call), self.loop)
        outcome = future.result(timeout=CALL_TIMEOUT_S)
        record(None if outcome.span is None else outcome.span.cost_usd)
        if outcome.error is not None:
            raise JudgeCallFailed(f"{outcome.error.status}: {outcome.error.message}")
        choices = (outcome.payload or {}).get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")


class HttpTransport:
    def __init__(self, base_url: str | None = None, api_key: str | None = None) -> None:
        from openai import OpenAI

        url = (base_url or os.environ.get("PILOTHOUSE_URL") or "http://127.0.0.1:7300").rstrip("/")
        key = api_key or os.environ.get("PILOTHOUSE_API_KEY") or "none"
        # no client retries: a failed call fails the judgement (the judge retries only unreadable answers)
        self.client = OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=CALL_TIMEOUT_S)

    def complete(self, messages: Sequence[Mapping[str, str]], *, model: str, params: Mapping[str, Any]) -> str:
        import openai

        try:
            reply = self.client.chat.completions.create(
                model=model,
                messages=[dict(m) for m in messages],  # type: ignore[misc]
                extra_body=dict(params),
            )
        except openai.OpenAIError as exc:
            raise JudgeCallFailed(str(exc)) from None
        return reply.choices[0].message.content or ""


def transport() -> JudgeTransport:
    """The transport in force: the one the caller set, else the gateway over HTTP."""
    found = current_transport.get()
    return found if found is not None else HttpTransport()
