"""The prepare stage's work: validate a body (expanding a prompt reference), resolve the model, choose the first
deployment, check capabilities and the context window, and open the call's span. Nothing is sent yet.

The functions take the gateway's parts (`Parts`: the `Gateway` in gateway/model_calls.py is one) so the
router or price book a caller swapped in is the one used.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.gateway.prepared import Prepared, PreparedEmbeddings
from pilothouse.gateway.pricing import PriceBook
from pilothouse.gateway.providers.base import ChatRequest, Provider, ProviderError
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.routing import Router
from pilothouse.gateway.routing.upstream_errors import provider_error_to_api
from pilothouse.gateway.tokens import estimate_messages_tokens
from pilothouse.gateway.validation import ChatBody, parse_chat_body, parse_embeddings_body
from pilothouse.prompts.registry.refs import MODEL_PREFIX
from pilothouse.prompts.registry.resolver import ExpandedPrompt, PromptResolver
from pilothouse.tracing.model import SpanRecord, TraceRecord

_REQUEST_ATTRS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}


class Parts(Protocol):
    """What preparing a call reads of the gateway."""

    settings: Settings
    pool: ProviderPool
    prices: PriceBook
    catalog: dict[str, ModelEntry]
    router: Router
    prompts: PromptResolver | None


def resolve(catalog: dict[str, ModelEntry], name: str, kind: str) -> ModelEntry:
    """The catalog entry of a public model name; 404 when there is none, 400 when it is the other kind."""
    entry = catalog.get(name)
    if entry is None:
        available = ", ".join(n for n, e in sorted(catalog.items()) if e.kind == kind)
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


def names_prompt(raw: Any) -> bool:
    """Whether a chat body's model is a prompt reference (`prompt:NAME@LABEL`)."""
    return isinstance(raw, dict) and isinstance(raw.get("model"), str) and raw["model"].startswith(MODEL_PREFIX)


def expand_prompt(parts: Parts, raw: dict[str, Any], trace: TraceRecord) -> tuple[dict[str, Any], ExpandedPrompt]:
    """The rendered body of a prompt reference (database reads and template work: call it off the loop)."""
    if parts.prompts is None:
        raise InvalidRequest("prompt references need the prompt registry (a server with a store)", param="model")
    return parts.prompts.expand(raw, trace)


def _count(provider: Provider, deployment: Deployment, messages: list[dict[str, Any]]) -> int | None:
    """The exact input tokens where the deployment has a tokenizer, else None."""
    try:
        return provider.count_input_tokens(messages)
    except ProviderError as exc:
        raise provider_error_to_api(exc, f"{deployment.provider}/{deployment.model}") from exc


def prepare_chat(parts: Parts, raw: Any, trace: TraceRecord, *, expanded: ExpandedPrompt | None = None) -> Prepared:
    """A chat call ready to send; `expanded`: a prompt reference already expanded (`prepare_chat_async`)."""
    prompt = expanded
    if prompt is None and names_prompt(raw):
        raw, prompt = expand_prompt(parts, raw, trace)  # rendered messages, the version's model and config
    body = parse_chat_body(raw)
    entry = resolve(parts.catalog, body.model, "chat")
    deployment = parts.router.pick(entry, stream=body.stream)
    provider = parts.pool.get(deployment)
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
    input_tokens = _count(provider, deployment, body.messages)
    window = parts.prices.context_window_for(deployment)
    if window is not None:
        needed = (input_tokens if input_tokens is not None else estimate_messages_tokens(body.messages)) + (
            body.max_tokens or 0
        )
        if needed > window:
            routed = parts.router.fit_context(entry, needed, tools=bool(body.params.get("tools")), stream=body.stream)
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
            provider = parts.pool.get(deployment)
            input_tokens = _count(provider, deployment, body.messages)  # by this deployment's tokenizer, if any
    span = _chat_span(parts.settings, trace, body, entry, deployment)
    if prompt is not None:
        prompt.annotate(span, capture_content=parts.settings.capture_content)
    request = ChatRequest(model=deployment.model, messages=body.messages, params=dict(body.params))
    prep = Prepared(body, entry, deployment, provider, request, span, input_tokens, trace)
    prep.input_counted_by = deployment if input_tokens is not None else None
    return prep


async def prepare_chat_async(parts: Parts, raw: Any, trace: TraceRecord) -> Prepared:
    """`prepare_chat` for callers on the event loop: a prompt reference's lookup and rendering (database reads,
    up to a second of template work) run in a worker thread, so they cannot stall other requests."""
    if names_prompt(raw):
        raw, prompt = await asyncio.to_thread(expand_prompt, parts, raw, trace)
        return prepare_chat(parts, raw, trace, expanded=prompt)
    return prepare_chat(parts, raw, trace)


def _chat_span(
    settings: Settings, trace: TraceRecord, body: ChatBody, entry: ModelEntry, deployment: Deployment
) -> SpanRecord:
    """The call's `llm` span, with the request's GenAI attributes (and its content where captured)."""
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
    if settings.capture_content:
        span.input = {"messages": body.messages}
        if body.params.get("tools"):
            attrs["gen_ai.tool.definitions"] = body.params["tools"]
    return span


def prepare_embeddings(parts: Parts, raw: Any, trace: TraceRecord) -> PreparedEmbeddings:
    """Validate, resolve the model and open the embedding span; nothing is sent yet."""
    name, inputs, fmt = parse_embeddings_body(raw)
    entry = resolve(parts.catalog, name, "embedding")
    deployment = parts.router.pick(entry)
    provider = parts.pool.get(deployment)
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
    if parts.settings.capture_content:
        span.input = {"input": inputs}
    return PreparedEmbeddings(entry, deployment, provider, inputs, fmt, span)
