"""The SDK's span and trace, kept as plain slotted objects: creating and ending one is a few attribute writes
and one append to the exporter's queue (the cost per span is what `bench/sdk_overhead.py` measures).

Content (inputs, outputs, attributes) is held by reference and turned into JSON by the exporter's thread
(`wire.py`), off the application's path.
"""

from __future__ import annotations

import time
from random import getrandbits
from typing import Any, Literal, get_args

from pilothouse.sdk.tracing import exporter as _exporter

SpanKind = Literal["llm", "embedding", "retrieval", "tool", "guard", "cache", "step", "eval", "http"]
SPAN_KINDS: frozenset[str] = frozenset(get_args(SpanKind))


def new_trace_id() -> str:
    """128 random bits as 32 hex characters (never the all-zero id W3C forbids)."""
    return f"{getrandbits(128) | 1:032x}"


def new_span_id() -> str:
    """64 random bits as 16 hex characters (never zero)."""
    return f"{getrandbits(64) | 1:016x}"


class TraceState:
    """One trace as this process sees it: its id, name and the fields `update_trace` sets."""

    __slots__ = ("id", "metadata", "name", "session_id", "tags", "user_id")

    def __init__(self, trace_id: str, name: str) -> None:
        self.id = trace_id
        self.name = name
        self.session_id: str | None = None
        self.user_id: str | None = None
        self.tags: list[str] | None = None
        self.metadata: dict[str, Any] | None = None

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "tags": self.tags,
        }


class Span:
    """An open or ended span. Set what you learn while it runs with `update(...)` and `set_attribute`."""

    __slots__ = (
        "attributes",
        "cost_usd",
        "ended_at",
        "error",
        "id",
        "input",
        "input_tokens",
        "kind",
        "model",
        "name",
        "output",
        "output_tokens",
        "parent_id",
        "provider",
        "root",
        "started_at",
        "status",
        "trace",
        "ttft_ms",
    )

    def __init__(self, trace: TraceState, kind: str, name: str, parent_id: str | None, *, root: bool) -> None:
        self.trace = trace
        self.kind = kind
        self.name = name
        self.id = new_span_id()
        self.parent_id = parent_id
        self.root = root
        self.status = "ok"
        self.error: str | None = None
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.ttft_ms: float | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cost_usd: str | None = None
        self.attributes: dict[str, Any] | None = None
        self.input: Any = None
        self.output: Any = None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.attributes is None:
            self.attributes = {}
        self.attributes[key] = value

    def update(
        self,
        *,
        input: Any = None,
        output: Any = None,
        model: str | None = None,
        provider: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        **attributes: Any,
    ) -> None:
        """Record what the span did; arguments left None keep their value, extra keywords become attributes."""
        if input is not None:
            self.input = input
        if output is not None:
            self.output = output
        if model is not None:
            self.model = model
        if provider is not None:
            self.provider = provider
        if input_tokens is not None:
            self.input_tokens = input_tokens
        if output_tokens is not None:
            self.output_tokens = output_tokens
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def fail(self, exc: BaseException) -> None:
        """Mark the span failed by `exc` (its type and message are kept)."""
        self.status = "error"
        self.error = f"{type(exc).__name__}: {exc}"[:4000]
        self.set_attribute("exception.type", f"{type(exc).__module__}.{type(exc).__qualname__}")

    def end(self) -> None:
        """Close the span and queue it for sending; a second call does nothing."""
        if self.ended_at is not None:
            return
        self.ended_at = time.time()
        if self.root and self.trace.metadata:
            self.set_attribute("pilothouse.trace.metadata", self.trace.metadata)
        _exporter.ACTIVE.enqueue(self)
