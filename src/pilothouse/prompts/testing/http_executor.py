"""Running scenario cases through a Pilothouse gateway over HTTP with the official `openai` client, the way
an application calls a prompt: `model="prompt:NAME@VERSION"` with the case's variables in the body.

Tokens come from the response; the model-call latency and the cost from the request's trace (its `llm`
span), read back by the trace id the gateway returns in `x-pilothouse-trace-id`.
"""

from __future__ import annotations

import secrets
import time
from decimal import Decimal
from typing import Any, cast

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam

from pilothouse.prompts.testing.assertions import Execution
from pilothouse.prompts.testing.runner import ExecutionFailed
from pilothouse.prompts.testing.scenarios import Case
from pilothouse.sdk.client import PilothouseError

TRACE_HEADER = "x-pilothouse-trace-id"
SESSION_HEADER = "x-pilothouse-session-id"
# Scenario runs must see the model's real answer, never a cached one (honoured once a cache exists).
CACHE_HEADER = "x-pilothouse-cache"
NO_STORE = "no-store"


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return f"{exc.status_code}: {err['message']}"
    return f"{exc.status_code}: {exc.message}"


def _llm_span(trace: dict[str, Any]) -> dict[str, Any] | None:
    spans = [s for s in trace.get("spans", []) if s.get("kind") == "llm"]
    return spans[-1] if spans else None


class HttpExecutor:
    """Runs cases against `prompt:REF` on the gateway at `url` (REF: `NAME@VERSION`, or any prompt reference).

    The calls of one executor share a session id (`prompt-test-<random>`), so a run's traces can be listed
    together (`pilothouse traces list --session ...`)."""

    def __init__(self, url: str, api_key: str | None, ref: str, *, timeout: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.ref = ref
        self.session_id = f"prompt-test-{secrets.token_hex(6)}"
        self._openai = openai.AsyncOpenAI(
            base_url=self.url + "/v1", api_key=api_key or "missing-key", max_retries=0, timeout=timeout
        )
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._openai.close()
        await self._http.aclose()

    async def __call__(self, case: Case) -> Execution:
        started = time.perf_counter()
        try:
            raw = await self._openai.chat.completions.with_raw_response.create(
                model=f"prompt:{self.ref}",
                messages=cast(list[ChatCompletionMessageParam], case.messages),
                extra_body={"variables": case.variables},
                extra_headers={CACHE_HEADER: NO_STORE, SESSION_HEADER: self.session_id},
            )
        except openai.APIStatusError as exc:
            raise ExecutionFailed(_error_message(exc), trace_id=exc.response.headers.get(TRACE_HEADER)) from None
        except openai.APIConnectionError as exc:
            raise PilothouseError(f"cannot reach the gateway at {self.url}/v1 ({exc.message})") from None
        wall_ms = round((time.perf_counter() - started) * 1000.0, 3)
        completion = raw.parse()
        trace_id = raw.headers.get(TRACE_HEADER)
        choice = completion.choices[0] if completion.choices else None
        output = (choice.message.content if choice else None) or ""
        trace = await self._trace(trace_id) if trace_id else {}
        span = _llm_span(trace)
        cost = span.get("cost_usd") if span else None
        latency = span.get("latency_ms") if span else None
        return Execution(
            output=output,
            input_tokens=completion.usage.prompt_tokens if completion.usage else None,
            output_tokens=completion.usage.completion_tokens if completion.usage else None,
            latency_ms=float(latency) if latency is not None else wall_ms,
            cost_usd=Decimal(cost) if cost is not None else None,
            trace_id=trace_id,
            prompt_version=trace.get("prompt_version"),
            finish_reason=choice.finish_reason if choice else None,
        )

    async def _trace(self, trace_id: str) -> dict[str, Any]:
        try:
            response = await self._http.get(f"/api/traces/{trace_id}")
        except httpx.TransportError as exc:
            raise PilothouseError(f"cannot reach the Pilothouse server at {self.url} ({exc})") from None
        if response.status_code != 200:
            raise ExecutionFailed(
                f"the call succeeded but its trace could not be read ({response.status_code}): {response.text[:200]}",
                trace_id=trace_id,
            )
        body: dict[str, Any] = response.json()
        return body
