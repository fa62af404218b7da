"""The gateway's model calls: the work the pipeline's stages are made of. `Gateway` holds the catalog, the
router, the providers and the price book; it prepares a call (gateway/preparation.py), then makes it (a whole
answer, a stream, embeddings) and meters it on the call's span (gateway/metering.py).

It runs no admission, cache or settlement and stores no trace: callers go through `Pipeline.run`
(gateway/pipeline.py), which runs these calls inside the ordered stages.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np

from pilothouse.config import ModelEntry, Settings
from pilothouse.gateway import preparation
from pilothouse.gateway.metering import meter, record_output, usage_body, usage_from
from pilothouse.gateway.prepared import Prepared, PreparedEmbeddings
from pilothouse.gateway.pricing import PriceBook, cost
from pilothouse.gateway.providers.base import ProviderError, Usage
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.routing import Router
from pilothouse.gateway.routing.deadline import Deadline, deadline_error, mark_cut
from pilothouse.gateway.routing.upstream_errors import provider_error_to_api
from pilothouse.gateway.streaming import StreamAccumulator, sse
from pilothouse.gateway.tokens import message_text
from pilothouse.prompts.registry.resolver import ExpandedPrompt, PromptResolver
from pilothouse.tracing.model import TraceRecord


class Gateway:
    """Turns OpenAI-format requests into provider calls, recording each on the caller's trace."""

    def __init__(
        self, settings: Settings, pool: ProviderPool, prices: PriceBook, prompts: PromptResolver | None = None
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.prices = prices
        self.catalog = settings.catalog()
        self.router = Router(settings, pool, prices, self.catalog)
        self.prompts = prompts  # resolves `model: "prompt:NAME@LABEL"`; None: prompt references are refused

    # -- models -----------------------------------------------------------------------------------
    def list_models(self) -> list[dict[str, Any]]:
        return [
            {"id": name, "object": "model", "created": 0, "owned_by": entry.deployments[0].provider}
            for name, entry in sorted(self.catalog.items())
        ]

    def resolve(self, name: str, kind: str) -> ModelEntry:
        return preparation.resolve(self.catalog, name, kind)

    # -- prepare ----------------------------------------------------------------------------------
    async def prepare_chat_async(self, raw: Any, trace: TraceRecord) -> Prepared:
        """`prepare_chat` with a prompt reference's lookup and rendering off the event loop."""
        return await preparation.prepare_chat_async(self, raw, trace)

    def prepare_chat(self, raw: Any, trace: TraceRecord, *, expanded: ExpandedPrompt | None = None) -> Prepared:
        return preparation.prepare_chat(self, raw, trace, expanded=expanded)

    def prepare_embeddings(self, raw: Any, trace: TraceRecord) -> PreparedEmbeddings:
        return preparation.prepare_embeddings(self, raw, trace)

    # -- chat -------------------------------------------------------------------------------------
    async def chat(self, prep: Prepared) -> dict[str, Any]:
        """Non-streamed completion; returns the OpenAI `chat.completion` body."""
        result = await self.router.chat(prep)  # route: deployments, retries, fallbacks (gateway/routing)
        body = result.body
        choices = body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        meter(self.prices, prep, result.usage, message_text(message))
        capture = self.settings.capture_content
        record_output(
            prep.span,
            message,
            choices[0].get("finish_reason"),
            body.get("id"),
            body.get("model"),
            capture_content=capture,
        )
        if result.usage is None or "usage" not in body:
            body["usage"] = usage_body(prep.span)
        return body

    async def chat_stream(self, prep: Prepared) -> AsyncGenerator[bytes, None]:
        """SSE events for a streamed completion, without the final `[DONE]` (the pipeline's caller sends it
        once the trace is stored). A failure before the first event raises ApiError; after it, it becomes an
        SSE error event (the status line is already sent)."""
        acc = StreamAccumulator()
        started, chunks = await self.router.open_stream(prep)  # route: retried until a first chunk arrives
        span = prep.span
        sent = False
        try:
            async for chunk in chunks:
                if acc.add(chunk) and span.ttft_ms is None:
                    span.ttft_ms = round((time.perf_counter() - started) * 1000.0, 3)
                    span.attributes["gen_ai.response.time_to_first_chunk"] = span.ttft_ms / 1000.0
                if chunk.get("usage") and not chunk.get("choices"):
                    continue  # re-emitted below, only if the caller asked for it
                sent = True
                yield sse(chunk)
        except (GeneratorExit, asyncio.CancelledError):
            # The caller left mid-stream: the upstream still spent these tokens, so meter them.
            meter(self.prices, prep, usage_from(acc.usage), acc.output_text(), acc.pieces)
            raise
        except ProviderError as exc:
            error = provider_error_to_api(exc, f"{span.provider}/{prep.request.model}")
            if not sent:
                raise error from exc  # nothing sent yet: the caller gets a proper HTTP error status
            span.finish(status="error", error=error.message)
            self.router.end_stream(prep, exc)
            meter(self.prices, prep, usage_from(acc.usage), acc.output_text(), acc.pieces)
            yield sse(error.body())
            return
        meter(self.prices, prep, usage_from(acc.usage), acc.output_text(), acc.pieces)
        record_output(
            span,
            acc.message(),
            acc.finish_reason,
            acc.response_id,
            acc.response_model,
            capture_content=self.settings.capture_content,
        )
        if prep.body.include_usage:
            yield sse(
                {
                    "id": acc.response_id or "chatcmpl",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": acc.response_model or prep.request.model,
                    "choices": [],
                    "usage": usage_body(span),
                }
            )
        span.finish()
        self.router.end_stream(prep, None)

    # -- embeddings -------------------------------------------------------------------------------
    async def embeddings(self, raw: Any, trace: TraceRecord) -> dict[str, Any]:
        """`prepare_embeddings` then `embed`, with no stage between them (tests and benchmarks of this layer)."""
        return await self.embed(self.prepare_embeddings(raw, trace))

    async def embed(self, prep: PreparedEmbeddings) -> dict[str, Any]:
        """Call the upstream within the model's deadline, meter the span; returns the OpenAI `list` body."""
        entry, deployment, provider, span = prep.entry, prep.deployment, prep.provider, prep.span
        inputs, fmt = prep.inputs, prep.encoding_format
        deadline = Deadline(entry.call_deadline_s or self.settings.routing.call_deadline_s, time.monotonic())
        try:
            async with asyncio.timeout_at(deadline.loop_at) as timer:  # not routed, but bounded all the same
                result = await provider.embed(deployment.model, inputs)
        except ProviderError as exc:
            raise provider_error_to_api(exc, f"{deployment.provider}/{deployment.model}") from exc
        except TimeoutError:
            if not timer.expired():
                raise
            mark_cut(span, "deadline_exceeded")
            raise deadline_error(deadline) from None
        span.input_tokens, span.output_tokens = result.input_tokens, 0
        span.attributes["gen_ai.usage.input_tokens"] = result.input_tokens
        if result.vectors:
            span.attributes["gen_ai.embeddings.dimension.count"] = len(result.vectors[0])
        price = self.prices.price_for(deployment)
        span.cost_usd = None if price is None else cost(price, Usage(result.input_tokens, 0))
        span.finish()
        data = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(v, fmt)}
            for i, v in enumerate(result.vectors)
        ]
        usage = {"prompt_tokens": result.input_tokens, "total_tokens": result.input_tokens}
        return {"object": "list", "data": data, "model": entry.name, "usage": usage}


def _encode_vector(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector
