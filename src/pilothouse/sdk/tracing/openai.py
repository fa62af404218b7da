"""`wrap_openai(client)`: an official `openai.OpenAI` / `AsyncOpenAI` client whose chat completions (whole or
streamed) become `llm` spans, with model, usage and the answer, under the current span.

Every call carries a W3C `traceparent` header naming its span, so a call through the Pilothouse gateway joins
the caller's trace: the gateway's spans (routing, guards, the metered upstream call) nest under this one.
Such a call is recognised by the gateway's `x-pilothouse-trace-id` answer header; the gateway then owns the
call's tokens and cost (on its own `llm` span), and this span keeps the usage as attributes only, so a trace
never counts one call twice. For a direct call to a provider the server prices the span at ingest from its
model and usage (the same price book as the gateway's).

The `openai` package is imported by the application, never by this module: `import pilothouse` stays light.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from pilothouse.sdk.tracing.context import current
from pilothouse.sdk.tracing.observe import start_span
from pilothouse.sdk.tracing.spans import Span
from pilothouse.sdk.tracing.traceparent import HEADER, TraceParent

C = TypeVar("C")
GATEWAY_HEADER = "x-pilothouse-trace-id"
_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "frequency_penalty",
    "presence_penalty",
)


def wrap_openai(client: C) -> C:
    """Trace `client.chat.completions.create` (sync or async, streaming or not); returns the same client."""
    completions = client.chat.completions  # type: ignore[attr-defined]
    if getattr(completions, "_pilothouse_wrapped", False):
        return client
    raw_create = completions.with_raw_response.create  # bound before `create` is replaced
    base_url = str(getattr(client, "base_url", "") or "")
    if _is_async(completions):

        async def create_async(*args: Any, **kwargs: Any) -> Any:
            s = _begin(kwargs, base_url)
            token = current.set(s)
            try:
                raw = await raw_create(*args, **kwargs)
                result = raw.parse()
            except BaseException as exc:
                _fail(s, exc)
                raise
            finally:
                current.reset(token)
            via_gateway = raw.headers.get(GATEWAY_HEADER)
            if kwargs.get("stream"):
                return _AsyncTracedStream(result, s, via_gateway)
            _finish(s, result, via_gateway)
            return result

        completions.create = create_async
    else:

        def create(*args: Any, **kwargs: Any) -> Any:
            s = _begin(kwargs, base_url)
            token = current.set(s)
            try:
                raw = raw_create(*args, **kwargs)
                result = raw.parse()
            except BaseException as exc:
                _fail(s, exc)
                raise
            finally:
                current.reset(token)
            via_gateway = raw.headers.get(GATEWAY_HEADER)
            if kwargs.get("stream"):
                return _TracedStream(result, s, via_gateway)
            _finish(s, result, via_gateway)
            return result

        completions.create = create
    completions._pilothouse_wrapped = True
    return client


def _is_async(completions: Any) -> bool:
    """`AsyncOpenAI`'s resource (its `create` is wrapped by a plain function, so the class tells)."""
    import inspect

    return type(completions).__name__.startswith("Async") or inspect.iscoroutinefunction(completions.create)


def _begin(kwargs: dict[str, Any], base_url: str) -> Span:
    """Open the call's span and add its `traceparent` to the request headers (the caller's own kept)."""
    model = str(kwargs.get("model", "unknown"))
    s = start_span("llm", f"chat {model}")
    s.provider = "openai"
    s.input = kwargs.get("messages")
    s.set_attribute("gen_ai.operation.name", "chat")
    s.set_attribute("gen_ai.request.model", model)
    if base_url:
        s.set_attribute("server.address", base_url)
    for name in _PARAMS:
        value = kwargs.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            s.set_attribute(f"gen_ai.request.{name}", value)
    headers = dict(kwargs.get("extra_headers") or {})
    headers.setdefault(HEADER, TraceParent(s.trace.id, s.id).header())
    kwargs["extra_headers"] = headers
    return s


def _fail(s: Span, exc: BaseException) -> None:
    s.fail(exc)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        s.set_attribute("http.response.status_code", status)
    s.end()


def _usage(s: Span, usage: Any, via_gateway: str | None) -> None:
    if usage is None:
        return
    tin = getattr(usage, "prompt_tokens", None)
    tout = getattr(usage, "completion_tokens", None)
    s.set_attribute("gen_ai.usage.input_tokens", tin)
    s.set_attribute("gen_ai.usage.output_tokens", tout)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    if cached:
        s.set_attribute("gen_ai.usage.cache_read.input_tokens", cached)
    if via_gateway is None:  # the gateway meters its own call; counting it here too would double it
        s.input_tokens = tin
        s.output_tokens = tout


def _mark_gateway(s: Span, via_gateway: str | None) -> None:
    if via_gateway is not None:
        s.set_attribute("pilothouse.via_gateway", True)
        s.set_attribute("pilothouse.gateway.trace_id", via_gateway)


def _finish(s: Span, result: Any, via_gateway: str | None) -> None:
    s.model = getattr(result, "model", None)
    s.set_attribute("gen_ai.response.id", getattr(result, "id", None))
    choices = getattr(result, "choices", None) or []
    reasons = [c.finish_reason for c in choices if getattr(c, "finish_reason", None)]
    if reasons:
        s.set_attribute("gen_ai.response.finish_reasons", reasons)
    if choices:
        s.output = choices[0].message
    _usage(s, getattr(result, "usage", None), via_gateway)
    _mark_gateway(s, via_gateway)
    s.end()


class _StreamRecorder:
    """What a stream's chunks say: first-token time, text, finish reason, usage (when the stream includes it)."""

    def __init__(self, s: Span, via_gateway: str | None) -> None:
        self.span = s
        self.via_gateway = via_gateway
        self.parts: list[str] = []
        self.chunks = 0
        self.done = False

    def chunk(self, chunk: Any) -> None:
        s = self.span
        if self.chunks == 0:
            s.ttft_ms = round((time.time() - s.started_at) * 1000.0, 3)
            s.model = getattr(chunk, "model", None)
            s.set_attribute("gen_ai.response.id", getattr(chunk, "id", None))
        self.chunks += 1
        for choice in getattr(chunk, "choices", None) or []:
            delta = getattr(choice, "delta", None)
            text = getattr(delta, "content", None) if delta is not None else None
            if text:
                self.parts.append(text)
            if getattr(choice, "finish_reason", None):
                s.set_attribute("gen_ai.response.finish_reasons", [choice.finish_reason])
        _usage(s, getattr(chunk, "usage", None), self.via_gateway)

    def end(self, exc: BaseException | None = None, *, early: bool = False) -> None:
        if self.done:
            return
        self.done = True
        s = self.span
        s.output = "".join(self.parts)
        s.set_attribute("pilothouse.stream.chunks", self.chunks)
        if early:
            s.set_attribute("pilothouse.stream.closed_early", True)
        _mark_gateway(s, self.via_gateway)
        if exc is not None:
            s.fail(exc)
        s.end()


class _TracedStream:
    """The client's `Stream`, recording each chunk; the span ends with the stream (exhausted, closed or failed)."""

    def __init__(self, stream: Any, s: Span, via_gateway: str | None) -> None:
        self._stream = stream
        self._rec = _StreamRecorder(s, via_gateway)

    def __iter__(self) -> _TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._rec.end()
            raise
        except BaseException as exc:
            self._rec.end(exc)
            raise
        self._rec.chunk(chunk)
        return chunk

    def __enter__(self) -> _TracedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._rec.end(early=True)
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _AsyncTracedStream:
    """The async client's `AsyncStream`, recording each chunk (see `_TracedStream`)."""

    def __init__(self, stream: Any, s: Span, via_gateway: str | None) -> None:
        self._stream = stream
        self._rec = _StreamRecorder(s, via_gateway)

    def __aiter__(self) -> _AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._rec.end()
            raise
        except BaseException as exc:
            self._rec.end(exc)
            raise
        self._rec.chunk(chunk)
        return chunk

    async def __aenter__(self) -> _AsyncTracedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._rec.end(early=True)
        await self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
