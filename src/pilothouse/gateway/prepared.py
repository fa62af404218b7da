"""A call after the prepare stage: validated, its model and deployment chosen, its span opened, nothing sent.

Admission reads what it may cost (`demand()`), the cache keys on its body, and the route stage sends it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pilothouse.config import Deployment, ModelEntry
from pilothouse.gateway.limits.demand import Demand
from pilothouse.gateway.limits.loop_guard import chat_call
from pilothouse.gateway.providers.base import ChatRequest, Provider
from pilothouse.gateway.tokens import input_token_bound, texts_token_bound
from pilothouse.gateway.validation import ChatBody
from pilothouse.tracing.model import SpanRecord, TraceRecord


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
    added_input_bound: int = 0
    """A bound on the tokens the gateway added to what the model is sent besides the caller's messages (the
    system-prompt canary of the guard stages: its UTF-8 bytes, gateway.tokens), on top of both counts."""

    def unreported_input_tokens(self) -> int:
        """The input tokens to meter when the upstream reports no usage: the exact count where the deployment
        called is the one counted, else the upper bound (never the ~4 characters per token estimate)."""
        counted, called = self.input_counted_by, self.deployment
        same = counted is not None and (counted.provider, counted.model) == (called.provider, called.model)
        if self.input_tokens is not None and same:
            return self.input_tokens + self.added_input_bound
        return input_token_bound(self.body.messages, self.body.params) + self.added_input_bound

    def demand(self) -> Demand:
        """What admission reserves for this call: the input (exact count or bound) and max_tokens."""
        bound = input_token_bound(self.body.messages, self.body.params)  # a true upper bound, not an estimate
        bound += self.added_input_bound
        tokens_in = self.input_tokens + self.added_input_bound if self.input_tokens is not None else bound
        call = chat_call(self.body)
        return Demand(self.entry, self.deployment, self.span, tokens_in, bound, self.body.max_tokens, call)


@dataclass(slots=True)
class PreparedEmbeddings:
    """A validated embeddings call, ready to send."""

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
