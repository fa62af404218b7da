"""The inference path: validate (expanding prompt references) → resolve the model → check capabilities and
the context window → call through the router → meter tokens and cost → record the llm/embedding span.

The server owns the trace's lifetime (it is written whatever happens) and runs the stages around this module
(admission, cache lookup and store, settlement; see docs/architecture.md); this module fills the trace in.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.errors import ApiError, InvalidRequest, NotFound, RateLimited, UpstreamError, UpstreamTimeout
from pilothouse.gateway.limits.demand import Demand
from pilothouse.gateway.limits.loop_guard import chat_call
from pilothouse.gateway.pricing import PriceBook, cost
from pilothouse.gateway.providers.base import ChatRequest, Provider, ProviderError, Usage
from pilothouse.gateway.providers.redact import redact
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.routing import Router
from pilothouse.gateway.routing.deadline import Deadline, DeadlineExceeded, deadline_error, mark_cut
from pilothouse.gateway.streaming import StreamAccumulator, sse
from pilothouse.gateway.tokens import (
    estimate_messages_tokens,
    input_token_bound,
    message_text,
    output_token_estimate,
    texts_token_bound,
)
from pilothouse.gateway.validation import ChatBody, parse_chat_body, parse_embeddings_body
from pilothouse.prompts.refs import MODEL_PREFIX
from pilothouse.prompts.resolver import ExpandedPrompt, PromptResolver
from pilothouse.tracing.model import SpanRecord, TraceRecord

_REQUEST_ATTRS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the API key, its project and role."""

    key_id: str
    project_id: str
    role: str


@dataclass(slots=True)
class Prepared:
    """A validated chat call, ready to send."""

    body: ChatBody
    entry: ModelEntry
    deployment: Deployment
    provider: Provider
    request: ChatRequest
    span: SpanRecord
    input_tokens: int | None
    """Exact input tokens from the provider's tokenizer (`input_counted_by`'s); None where it has none."""
    trace: TraceRecord | None = None
    route: SpanRecord | None = None  # the `route` step span, once a call needed a second attempt
    input_counted_by: Deployment | None = None
    """The deployment whose tokenizer counted `input_tokens` (routing may move the call to another)."""

    def unreported_input_tokens(self) -> int:
        """The input tokens to meter when the upstream reports no usage: the exact count where the deployment
        called is the one counted, else the upper bound (never the ~4 characters per token estimate)."""
        counted, called = self.input_counted_by, self.deployment
        same = counted is not None and (counted.provider, counted.model) == (called.provider, called.model)
        if self.input_tokens is not None and same:
            return self.input_tokens
        return input_token_bound(self.body.messages, self.body.params)

    def demand(self) -> Demand:
        """What admission reserves for this call: the input (exact count or bound) and max_tokens."""
        bound = input_token_bound(self.body.messages, self.body.params)  # a true upper bound, not an estimate
        tokens_in = self.input_tokens if self.input_tokens is not None else bound
        call = chat_call(self.body)
        return Demand(self.entry, self.deployment, self.span, tokens_in, bound, self.body.max_tokens, call)


@dataclass(slots=True)
class PreparedEmbeddings:
    """A validated embeddings call, ready to send (`Gateway.prepare_embeddings`, then `Gateway.embed`)."""

    entry: ModelEntry
    deployment: Deployment
    provider: Provider
    inputs: list[str]
    encoding_format: str
    span: SpanRecord

    def demand(self) -> Demand:
        """What admission reserves for this call: the bound on its input tokens, and no output."""
        bound = texts_token_bound(self.inputs)
        call = {"model": self.entry.name, "input": self.inputs}
        return Demand(self.entry, self.deployment, self.span, bound, bound, 0, call)


def provider_error_to_api(exc: ProviderError, deployment: str) -> ApiError:
    """Map an upstream failure to the status a caller should see, keeping the upstream's reason with any
    credential in it redacted (every provider's error passes here before it reaches a caller or a trace)."""
    reason = redact(f"upstream {deployment}: {exc.message}")
    if exc.kind == "rate_limit":
        headers = {"retry-after": str(max(1, round(exc.retry_after)))} if exc.retry_after else {}
        return RateLimited(reason, code="upstream_rate_limited", headers=headers)
    if isinstance(exc, DeadlineExceeded):  # a stream cut by the call deadline after its first chunk
        return UpstreamTimeout(exc.message, code="deadline_exceeded", headers={"x-should-retry": "false"})
    if exc.kind == "timeout":
        return UpstreamTimeout(reason, code="upstream_timeout")
    if exc.kind == "context_window":
        return InvalidRequest(reason, code="context_length_exceeded", param="messages")
    if exc.kind == "bad_request":
        return InvalidRequest(reason, code="upstream_bad_request")
    if exc.kind == "auth":
        return UpstreamError(f"{reason} (check the deployment's API key)", code="upstream_auth_failed")
    return UpstreamError(reason, code="upstream_unavailable" if exc.kind == "unavailable" else "upstream_error")


def _names_prompt(raw: Any) -> bool:
    """Whether a chat body's model is a prompt reference (`prompt:NAME@LABEL`)."""
    return isinstance(raw, dict) and isinstance(raw.get("model"), str) and raw["model"].startswith(MODEL_PREFIX)


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
        entry = self.catalog.get(name)
        if entry is None:
            available = ", ".join(n for n, e in sorted(self.catalog.items()) if e.kind == kind)
            raise NotFound(
                f"The model '{name}' does not exist. Available {kind} models: {available or 'none'}",
                code="model_not_found",
                param="model",
            )
        if entry.kind != kind:
            raise InvalidRequest(
                f"'{name}' is an {entry.kind} model; use it with "
                + ("/v1/embeddings" if entry.kind == "embedding" else "/v1/chat/completions"),
                code="wrong_model_kind",
                param="model",
            )
        return entry

    # -- chat -------------------------------------------------------------------------------------
    def _expand_prompt(self, raw: dict[str, Any], trace: TraceRecord) -> tuple[dict[str, Any], ExpandedPrompt]:
        if self.prompts is None:
            raise InvalidRequest("prompt references need the prompt registry (a server with a store)", param="model")
        return self.prompts.expand(raw, trace)

    async def prepare_chat_async(self, raw: Any, trace: TraceRecord) -> Prepared:
        """`prepare_chat` for callers on the event loop: a prompt reference's lookup and rendering (database
        reads, up to a second of template work) run in a worker thread, so they cannot stall other requests."""
        if _names_prompt(raw):
            raw, prompt = await asyncio.to_thread(self._expand_prompt, raw, trace)
            return self.prepare_chat(raw, trace, expanded=prompt)
        return self.prepare_chat(raw, trace)

    def prepare_chat(self, raw: Any, trace: TraceRecord, *, expanded: ExpandedPrompt | None = None) -> Prepared:
        prompt = expanded  # a prompt reference `prepare_chat_async` already expanded
        if prompt is None and _names_prompt(raw):
            raw, prompt = self._expand_prompt(raw, trace)  # rendered messages, the version's model and config
        body = parse_chat_body(raw)
        entry = self.resolve(body.model, "chat")
        deployment = self.router.pick(entry, stream=body.stream)
        provider = self.pool.get(deployment)
        trace.model = entry.name
        trace.user_id = body.user
        if body.params.get("tools") and not provider.supports_tools:
            raise InvalidRequest(
                f"model '{entry.name}' ({deployment.provider}) does not support tools; "
                "remove 'tools' or choose a model that does",
                param="tools",
                code="tools_not_supported",
            )
        if body.stream and not provider.supports_streaming:
            raise InvalidRequest(f"model '{entry.name}' does not support streaming", param="stream")
        counter = getattr(provider, "count_input_tokens", None)
        try:
            input_tokens = int(counter(body.messages)) if counter is not None else None
        except ProviderError as exc:
            raise provider_error_to_api(exc, f"{deployment.provider}/{deployment.model}") from exc
        window = self.prices.context_window_for(deployment)
        if window is not None:
            needed = (input_tokens if input_tokens is not None else estimate_messages_tokens(body.messages)) + (
                body.max_tokens or 0
            )
            if needed > window:
                routed = self.router.fit_context(
                    entry, needed, tools=bool(body.params.get("tools")), stream=body.stream
                )
                if routed is None:
                    exact = "" if input_tokens is not None else " (estimated)"
                    raise InvalidRequest(
                        f"This request needs {needed} tokens{exact} "
                        f"({needed - (body.max_tokens or 0)} in the messages + {body.max_tokens or 0} max_tokens), "
                        f"but '{entry.name}' has a context window of {window}. "
                        "Shorten the messages or lower max_tokens.",
                        code="context_length_exceeded",
                        param="messages",
                    )
                entry, deployment = routed  # a larger-context fallback model
                provider = self.pool.get(deployment)
                counter = getattr(provider, "count_input_tokens", None)
                try:  # counted again by this deployment's tokenizer, if it has one
                    input_tokens = int(counter(body.messages)) if counter is not None else None
                except ProviderError as exc:
                    raise provider_error_to_api(exc, f"{deployment.provider}/{deployment.model}") from exc
        span = trace.span("llm", f"chat {entry.name}")
        span.model = entry.name
        span.provider = deployment.provider
        attrs = span.attributes
        attrs["gen_ai.operation.name"] = "chat"
        attrs["gen_ai.provider.name"] = deployment.provider
        attrs["gen_ai.request.model"] = entry.name
        attrs["pilothouse.deployment.model"] = deployment.model
        attrs["gen_ai.request.stream"] = body.stream
        if body.max_tokens is not None:
            attrs["gen_ai.request.max_tokens"] = body.max_tokens
        for param, attr in _REQUEST_ATTRS.items():
            if param in body.params:
                attrs[attr] = body.params[param]
        if "stop" in body.params:
            stop = body.params["stop"]
            attrs["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else stop
        if self.settings.capture_content:
            span.input = {"messages": body.messages}
            if body.params.get("tools"):
                attrs["gen_ai.tool.definitions"] = body.params["tools"]
        if prompt is not None:
            prompt.annotate(span, capture_content=self.settings.capture_content)
        params = dict(body.params)
        request = ChatRequest(model=deployment.model, messages=body.messages, params=params)
        counted_by = deployment if input_tokens is not None else None
        prep = Prepared(body, entry, deployment, provider, request, span, input_tokens, trace)
        prep.input_counted_by = counted_by
        return prep

    def _meter(self, prep: Prepared, usage: Usage | None, output_text: str, output_pieces: int = 0) -> None:
        """Record usage on the span; when the upstream reported none, the input is the exact count or the
        bound and the output an estimate (text and streamed pieces) capped by the request's max_tokens."""
        span = prep.span
        if usage is None:
            usage = Usage(
                input_tokens=prep.unreported_input_tokens(),
                output_tokens=output_token_estimate(output_text, pieces=output_pieces, max_tokens=prep.body.max_tokens),
                estimated=True,
            )
        span.input_tokens = usage.input_tokens
        span.output_tokens = usage.output_tokens
        span.usage_estimated = usage.estimated
        attrs = span.attributes
        attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
        attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
        if usage.cached_input_tokens:
            attrs["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
        price = self.prices.price_for(prep.deployment)
        if price is None:
            attrs["pilothouse.cost.unknown"] = True
            span.cost_usd = None
        else:
            span.cost_usd = cost(price, usage)
            attrs["pilothouse.cost_usd"] = str(span.cost_usd)

    async def chat(self, prep: Prepared) -> dict[str, Any]:
        """Non-streamed completion; returns the OpenAI `chat.completion` body."""
        result = await self.router.chat(prep)  # route: deployments, retries, fallbacks (gateway/routing)
        body = result.body
        choices = body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        self._meter(prep, result.usage, message_text(message))
        self._record_output(prep.span, message, choices[0].get("finish_reason"), body.get("id"), body.get("model"))
        if result.usage is None or "usage" not in body:
            span = prep.span
            body["usage"] = {
                "prompt_tokens": span.input_tokens,
                "completion_tokens": span.output_tokens,
                "total_tokens": (span.input_tokens or 0) + (span.output_tokens or 0),
            }
        return body

    def _record_output(
        self,
        span: SpanRecord,
        message: dict[str, Any],
        finish: str | None,
        rid: str | None,
        rmodel: str | None,
    ) -> None:
        attrs = span.attributes
        if finish:
            attrs["gen_ai.response.finish_reasons"] = [finish]
        if rid:
            attrs["gen_ai.response.id"] = rid
        if rmodel:
            attrs["gen_ai.response.model"] = rmodel
        if self.settings.capture_content:
            span.output = {"message": message, "finish_reason": finish}

    async def chat_stream(self, prep: Prepared) -> AsyncGenerator[bytes, None]:
        """SSE events for a streamed completion, without the final `[DONE]` (the server sends it once the
        trace is stored). A failure before the first event raises ApiError; after it, it becomes an SSE
        error event (the status line is already sent)."""
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
            self._meter(prep, _usage_from(acc.usage), acc.output_text(), acc.pieces)
            raise
        except ProviderError as exc:
            error = provider_error_to_api(exc, f"{span.provider}/{prep.request.model}")
            if not sent:
                raise error from exc  # nothing sent yet: the caller gets a proper HTTP error status
            span.finish(status="error", error=error.message)
            self.router.end_stream(prep, exc)
            self._meter(prep, _usage_from(acc.usage), acc.output_text(), acc.pieces)
            yield sse(error.body())
            return
        usage = _usage_from(acc.usage)
        self._meter(prep, usage, acc.output_text(), acc.pieces)
        self._record_output(span, acc.message(), acc.finish_reason, acc.response_id, acc.response_model)
        if prep.body.include_usage:
            yield sse(
                {
                    "id": acc.response_id or "chatcmpl",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": acc.response_model or prep.request.model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": span.input_tokens,
                        "completion_tokens": span.output_tokens,
                        "total_tokens": (span.input_tokens or 0) + (span.output_tokens or 0),
                    },
                }
            )
        span.finish()
        self.router.end_stream(prep, None)

    # -- embeddings -------------------------------------------------------------------------------
    async def embeddings(self, raw: Any, trace: TraceRecord) -> dict[str, Any]:
        """`prepare_embeddings` then `embed`, with no admission stage between them (the server admits there)."""
        return await self.embed(self.prepare_embeddings(raw, trace))

    def prepare_embeddings(self, raw: Any, trace: TraceRecord) -> PreparedEmbeddings:
        """Validate, resolve the model and open the embedding span; nothing is sent yet."""
        name, inputs, fmt = parse_embeddings_body(raw)
        entry = self.resolve(name, "embedding")
        deployment = self.router.pick(entry)
        provider = self.pool.get(deployment)
        user = raw.get("user")  # OpenAI's end-user id: user budgets count embeddings too
        if user is not None and not isinstance(user, str):
            raise InvalidRequest("'user' must be a string", param="user")
        trace.model, trace.user_id = entry.name, user
        span = trace.span("embedding", f"embeddings {entry.name}")
        span.model, span.provider = entry.name, deployment.provider
        span.attributes.update(
            {
                "gen_ai.operation.name": "embeddings",
                "gen_ai.provider.name": deployment.provider,
                "gen_ai.request.model": entry.name,
                "gen_ai.request.encoding_formats": [fmt],
            }
        )
        if self.settings.capture_content:
            span.input = {"input": inputs}
        return PreparedEmbeddings(entry, deployment, provider, inputs, fmt, span)

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


def _usage_from(raw: dict[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0), int(cached))
