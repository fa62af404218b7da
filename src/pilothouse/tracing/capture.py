"""Content capture per project: what of a trace's content is stored (docs/traces-query.md#content-capture).

- `full`: the content as the gateway captured it (after any storage redaction of the call's guard policies);
- `redacted`: every string of the spans' input and output (and content attributes) through the PII and
  secrets scanners, masked, on top of the policies' own storage redaction;
- `off`: no message text at all: span input and output and the content attributes are dropped; numbers
  (tokens, cost, latency, status, model, guard decisions, scores) are kept.

A project without a setting is `full`. The trace sink applies the mode of each trace's project just before it
stores a batch, so every writer (gateway, SDK, OTLP ingest, replayed spill files) goes through it, and what is
exported or indexed for search afterwards is the stored form.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Literal, get_args

from sqlalchemy import select

from pilothouse.store.engine import Store
from pilothouse.store.tables import projects
from pilothouse.tracing.model import SpanRecord, TraceRecord

CaptureMode = Literal["off", "redacted", "full"]
CAPTURE_MODES: tuple[str, ...] = get_args(CaptureMode)
CONTENT_ATTRIBUTES = frozenset(
    {
        "pilothouse.cache.matched_text",
        "gen_ai.tool.definitions",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
    }
)
"""Span attributes that hold content (message text), dropped or redacted like input and output."""


def _content_attribute(name: str) -> bool:
    return name in CONTENT_ATTRIBUTES or name.startswith(("gen_ai.prompt.", "gen_ai.completion."))


def strip_content(span: SpanRecord) -> None:
    """`off`: no content left on the span."""
    span.input = None
    span.output = None
    for name in [n for n in span.attributes if _content_attribute(n)]:
        del span.attributes[name]


class _Redactor:
    """The PII and secrets scanners, masking; built on first use (they load dictionaries)."""

    def __init__(self) -> None:
        from pilothouse.guards.policy.storage import StoragePlan
        from pilothouse.guards.registry import build_scanner

        self.plan = StoragePlan((("mask", (build_scanner("pii", {}), build_scanner("secrets", {}))),))

    def redact(self, span: SpanRecord, kinds: set[str]) -> None:
        if span.input is not None:
            span.input = self.plan.redact_value(span.input, kinds)
        if span.output is not None:
            span.output = self.plan.redact_value(span.output, kinds)
        for name, value in list(span.attributes.items()):
            if _content_attribute(name):
                span.attributes[name] = self.plan.redact_value(value, kinds)


MODES_TTL_S = 1.0
"""How long a process reuses the projects' modes it read: a change made through another replica applies to
traces stored from at most this long after it (a change through this process applies at once: `changed()`)."""

_generation = 0
_generation_lock = threading.Lock()


def changed() -> None:
    """A project's mode was changed in this process: every ContentCapture reads the modes again."""
    global _generation
    with _generation_lock:
        _generation += 1


class ContentCapture:
    """Applies each project's capture mode to traces about to be stored."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._redactor: _Redactor | None = None
        self._known: dict[str, str] = {}  # every project with a mode set, as last read
        self._read_at = -MODES_TTL_S
        self._read_generation = -1

    def modes(self, project_ids: Iterable[str]) -> dict[str, str]:
        """The mode of each project that has one set (the others are `full`): read from the store at most once a
        MODES_TTL_S (the sink calls this for every batch: the gateway's hot path must not pay a query each time)."""
        ids = set(project_ids)
        if not ids:
            return {}
        now = time.monotonic()
        if now - self._read_at >= MODES_TTL_S or self._read_generation != _generation:
            generation = _generation
            with self._store.connect() as conn:
                rows = conn.execute(
                    select(projects.c.id, projects.c.content_capture).where(projects.c.content_capture.is_not(None))
                )
                self._known = {row.id: row.content_capture for row in rows}
            self._read_at, self._read_generation = now, generation
        return {pid: mode for pid, mode in self._known.items() if pid in ids}

    def apply(self, records: list[TraceRecord]) -> None:
        """Strip or redact, in place, the content of traces whose project asks for it."""
        modes = self.modes(r.project_id for r in records)
        if not modes:
            return
        for record in records:
            mode = modes.get(record.project_id, "full")
            if mode == "off":
                for span in record.spans:
                    strip_content(span)
            elif mode == "redacted":
                self._redact(record)

    def _redact(self, record: TraceRecord) -> None:
        if self._redactor is None:
            self._redactor = _Redactor()
        kinds: set[str] = set()
        for span in record.spans:
            if span.kind != "guard":
                self._redactor.redact(span, kinds)
        if kinds and record.spans:
            found = record.spans[0].attributes.get("pilothouse.guard.storage_redacted") or []
            record.spans[0].attributes["pilothouse.guard.storage_redacted"] = sorted(set(found) | kinds)


def capture_mode_of(value: Any) -> CaptureMode:
    """A stored or requested mode, checked (ValueError names the choices)."""
    if value not in CAPTURE_MODES:
        raise ValueError(f"content capture must be one of {', '.join(CAPTURE_MODES)}, not {value!r}")
    mode: CaptureMode = value
    return mode
