"""The output guard stage (inside the cache stage, around the route stage): the output rules of the call's
policies run over the model's answer, so the cache keeps only what the guards released and never a blocked
answer. A whole answer: a block replaces it with 400 `guard_blocked` (an audit event), a redact hit rewrites
the content returned. A stream: scanned as it flows with a hold-back window (guards/policy/streaming.py), so
a card number or key split over chunks is still caught and released redacted; a block ends the stream with
a terminal SSE error event (`guard_blocked`), and the trace records it. The rules' decisions are one `guard`
span (guards/policy/spans.py). Scanners
get the call's system prompt, the canary the input stage planted and the `response_format` schema
(`GuardState.output_context`); the canary is stripped from whatever is released, whatever the rules decided.
"""

from __future__ import annotations

from typing import Any

import orjson

from pilothouse.gateway.prepared import Prepared
from pilothouse.gateway.stages.base import CallNext, Events, Outcome, RequestContext, Services
from pilothouse.gateway.streaming import sse
from pilothouse.guards.policy import canary
from pilothouse.guards.policy.engine import GuardBlocked, GuardRun, RuleRecord
from pilothouse.guards.policy.runtime import GuardState, PolicyEngine
from pilothouse.guards.policy.spans import record_run
from pilothouse.guards.policy.streaming import HoldBack, Release
from pilothouse.guards.scanner import ScanContext


class OutputGuardStage:
    def __init__(self, services: Services) -> None:
        self.guards = services.guards

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        outcome = await call_next(ctx)
        guards, state, prep = self.guards, ctx.guard, ctx.prep
        if guards is None or state is None or not state.output or not isinstance(prep, Prepared):
            return outcome
        scan = state.output_context()  # with the system prompt, the canary planted and the response schema
        if outcome.events is not None:
            outcome.events = _guarded_stream(guards, state, ctx, prep, scan, outcome.events)
        elif outcome.payload is not None:
            await _guard_payload(guards, state, ctx, scan, outcome.payload)
        return outcome


async def _guard_payload(
    guards: PolicyEngine, state: GuardState, ctx: RequestContext, scan: ScanContext, payload: dict[str, Any]
) -> None:
    messages = [c.get("message") for c in payload.get("choices") or [] if isinstance(c, dict)]
    slots = [m for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str) and m["content"]]
    evaluations = await guards.run(state.output, [(m["content"], scan) for m in slots], state.clean)
    run = GuardRun()
    for message, evaluation in zip(slots, evaluations, strict=True):
        run.add(evaluation)
        if evaluation.blocked is None:
            text = evaluation.text
            message["content"] = text if scan.canary is None else canary.strip(text, scan.canary)
    state.runs.append(run)
    await guards.settle(ctx.trace, run)


def _chunk_of(event: bytes) -> dict[str, Any] | None:
    """The chunk of an SSE `data:` event (None for anything else: an error event, a comment)."""
    if not event.startswith(b"data: "):
        return None
    try:
        chunk = orjson.loads(event[6:])
    except orjson.JSONDecodeError:
        return None
    return chunk if isinstance(chunk, dict) and isinstance(chunk.get("choices"), list) else None


def _content_chunk(template: dict[str, Any], index: int, text: str) -> bytes:
    return sse(
        {
            "id": template.get("id"),
            "object": "chat.completion.chunk",
            "created": template.get("created"),
            "model": template.get("model"),
            "choices": [{"index": index, "delta": {"content": text}, "finish_reason": None}],
        }
    )


class _StreamGuard:
    """The hold-back scanners of one stream, one per choice."""

    def __init__(self, state: GuardState, scan: ScanContext, window: int) -> None:
        self.rules, self.scan, self.window, self.clean = state.output, scan, window, state.clean
        self.holds: dict[int, HoldBack] = {}
        self.blocked: RuleRecord | None = None

    def feed(self, index: int, text: str) -> str:
        hold = self.holds.get(index)
        if hold is None:
            hold = self.holds[index] = HoldBack(self.rules, self.scan, window=self.window, clean=self.clean)
        return self._take(hold.feed(text))

    def finish(self, index: int) -> str:
        hold = self.holds.get(index)
        return "" if hold is None else self._take(hold.finish())

    def flush(self) -> list[tuple[int, str]]:
        """Release what every choice still holds (before an event that must follow all content)."""
        out = [(index, self.finish(index)) for index in sorted(self.holds)]
        return [(index, text) for index, text in out if text] if self.blocked is None else []

    def _take(self, release: Release) -> str:
        if release.blocked is not None and self.blocked is None:
            self.blocked = release.blocked
        return "" if self.blocked is not None else release.text

    def run(self) -> GuardRun:
        run = GuardRun()
        for hold in self.holds.values():
            for record in hold.run.records.values():
                run.add_record(record)
        run.blocked = None if self.blocked is None else run.records.get(id(self.blocked.rule))
        return run


async def _guarded_stream(
    guards: PolicyEngine, state: GuardState, ctx: RequestContext, prep: Prepared, scan: ScanContext, events: Events
) -> Events:
    """Relay `events` with each choice's content held back, scanned and released (redacted); end it with an
    error event at the first block."""
    guard = _StreamGuard(state, scan, guards.window)
    template: dict[str, Any] = {}
    try:
        async for event in events:
            chunk = _chunk_of(event)
            if chunk is None or not chunk["choices"]:  # an error or the usage chunk: all content goes first
                for index, text in guard.flush():
                    yield _content_chunk(template, index, text)
                if guard.blocked is not None:
                    break
                yield event
                continue
            template = chunk
            choices: list[dict[str, Any]] = []
            for choice in chunk["choices"]:
                index = int(choice.get("index", 0))
                delta = dict(choice.get("delta") or {})
                text = delta.pop("content", None)
                released = guard.feed(index, text) if isinstance(text, str) and text else ""
                if choice.get("finish_reason"):
                    released += guard.finish(index)
                if guard.blocked is not None:
                    break
                if released:
                    delta["content"] = released
                if delta or choice.get("finish_reason"):
                    choices.append({**choice, "delta": delta})
            if guard.blocked is not None:
                break
            if choices:
                yield sse({**chunk, "choices": choices})
        else:
            for index, text in guard.flush():  # a stream that ended without a finish reason
                yield _content_chunk(template, index, text)
        if guard.blocked is not None:
            await events.aclose()  # stop the upstream stream (it meters what it used)
            error = GuardBlocked(guard.blocked)
            if prep.span.ended_at is None:
                prep.span.finish(status="error", error=error.message)
            ctx.trace.status = "error"
            yield sse(error.body())
    finally:
        await events.aclose()
        run = guard.run()
        state.runs.append(run)
        record_run(ctx.trace, run)
        if run.blocked is not None:
            await guards.record_block(ctx.trace, run.blocked)
