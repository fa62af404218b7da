"""The input guard stage (after prepare, before admission): the guard policies that apply to the call run
their input rules over the messages (chat: user messages as direct input; tool and function results and
document content parts as indirect input, `ScanContext(mode="indirect")`; embeddings: every input). A block
refuses the call (400 `guard_blocked`, an audit event) before anything is reserved or sent; a redact hit
rewrites the text sent to the model; flag and shadow hits are only recorded. The decisions of the rules that
ran are one `guard` span (guards/policy/spans.py). It also prepares the output rules' context: the system
prompt, the `response_format` schema, and, when an output rule checks for system-prompt leaks, a canary
planted in the upstream request only (guards/policy/canary.py), counted in the admission's token bound.
Whatever happens next, the trace's content is redacted per the policies' `storage:` and stripped of the
canary before the trace stage stores it (for a stream: once it ended).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pilothouse.gateway.prepared import Prepared, PreparedEmbeddings
from pilothouse.gateway.providers.base import ChatRequest
from pilothouse.gateway.stages.base import CallNext, Events, Outcome, RequestContext, Services
from pilothouse.gateway.tokens import input_token_bound
from pilothouse.guards.policy import canary
from pilothouse.guards.policy.engine import GuardRun
from pilothouse.guards.policy.runtime import GuardState, PolicyEngine
from pilothouse.guards.scanner import ScanContext

_USER = ScanContext(role="user", direction="input", mode="direct")
_TOOL = ScanContext(role="tool", direction="input", mode="indirect")
_DOCUMENT = ScanContext(role="document", direction="input", mode="indirect")
_INDIRECT_ROLES = ("tool", "function")


class InputGuardStage:
    def __init__(self, services: Services) -> None:
        self.guards = services.guards

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        guards = self.guards
        if guards is None:
            return await call_next(ctx)
        prep, call = ctx.prepared(), ctx.call
        state = await guards.resolve(
            ctx.trace.project_id,
            key_id=call.principal.key_id,
            model=prep.body.model if isinstance(prep, Prepared) else prep.entry.name,  # the public name asked for
            prompt=ctx.trace.prompt_name,
            route=call.kind,
        )
        if state is None:
            return await call_next(ctx)
        ctx.guard = state
        try:
            if isinstance(prep, Prepared):
                state.system_prompt = _system_prompt(prep.body.messages)
                state.json_schema = response_schema(prep.body.params)
            await _check(guards, state, ctx, prep)
            if isinstance(prep, Prepared) and any(r.rule.scanner == canary.SCANNER for r in state.output):
                _plant_canary(state, prep)
            outcome = await call_next(ctx)
        except BaseException:
            _redact_stored(state, ctx)
            raise
        if outcome.events is None:
            _redact_stored(state, ctx)
        else:
            outcome.events = _redacted_after(state, ctx, outcome.events)
        return outcome


async def _check(guards: PolicyEngine, state: GuardState, ctx: RequestContext, prep: Any) -> None:
    """Run the input rules; rewrite redacted texts in place; record spans; raise a block."""
    if not state.input:
        return
    slots = _slots(prep)
    evaluations = await guards.run(state.input, [(text, scan) for text, scan, _ in slots], state.clean)
    run = GuardRun()
    for (text, _, write), evaluation in zip(slots, evaluations, strict=True):
        run.add(evaluation)
        if evaluation.blocked is None and evaluation.text != text:
            write(evaluation.text)
    state.runs.append(run)
    await guards.settle(ctx.trace, run)


Slot = tuple[str, ScanContext, Any]
"""A text of the call, how to scan it, and how to write its redacted version back."""


def _slots(prep: Prepared | PreparedEmbeddings) -> list[Slot]:
    if isinstance(prep, PreparedEmbeddings):
        inputs = prep.inputs
        return [(text, _USER, _setter(inputs, i)) for i, text in enumerate(inputs) if text]
    slots: list[Slot] = []
    for message in prep.body.messages:
        role = message.get("role")
        scan = _USER if role == "user" else _TOOL if role in _INDIRECT_ROLES else None
        if scan is None:
            continue
        content = message.get("content")
        if isinstance(content, str) and content:
            slots.append((content, scan, _setter(message, "content")))
        elif isinstance(content, list):
            slots.extend(_part_slots(content, scan))
    return slots


def _part_slots(parts: list[Any], scan: ScanContext) -> list[Slot]:
    """The texts of content parts: `text` parts as their message's, `document` parts (a `text`, or an
    Anthropic-style `source: {type: text, data}`) as indirect input whatever the message's role."""
    slots: list[Slot] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        document = part.get("type") == "document"
        how = _DOCUMENT if document and scan is _USER else scan
        source = part.get("source")
        if isinstance(part.get("text"), str) and part["text"]:
            slots.append((part["text"], how, _setter(part, "text")))
        elif document and isinstance(source, dict) and source.get("type") == "text" and _text(source.get("data")):
            slots.append((source["data"], how, _setter(source, "data")))
    return slots


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def response_schema(params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema a structured answer must satisfy: `response_format: {type: json_schema, json_schema:
    {schema: ...}}`; None for any other format (a `json_object` answer has no schema to check)."""
    fmt = params.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if isinstance(schema, dict) else None


def _plant_canary(state: GuardState, prep: Prepared) -> None:
    """Send the model a copy of the messages with a canary in the system prompt; the body (the cache key, the
    stored trace) keeps the caller's messages. Admission reserves for the canary's tokens too (its bytes)."""
    planted = canary.plant(prep.request.messages)
    if planted is None:
        return
    messages, state.canary = planted
    prep.added_input_bound += input_token_bound(messages) - input_token_bound(prep.request.messages)
    prep.request = ChatRequest(prep.request.model, messages, prep.request.params)


def _setter(container: Any, key: Any) -> Any:
    def write(value: str) -> None:
        container[key] = value

    return write


def _system_prompt(messages: list[dict[str, Any]]) -> str | None:
    roles = ("system", "developer")
    texts = [m["content"] for m in messages if m.get("role") in roles and isinstance(m.get("content"), str)]
    return "\n".join(texts) if texts else None


def _redact_stored(state: GuardState, ctx: RequestContext) -> None:
    if state.canary is not None:
        canary.strip_trace(ctx.trace, state.canary)
    if state.storage is not None:
        state.storage.redact_trace(ctx.trace, state.clean)


async def _redacted_after(state: GuardState, ctx: RequestContext, events: Events) -> Events:
    """Relay a stream; redact the trace's content once it ended (before the trace stage stores it)."""
    try:
        async for event in events:
            yield event
    finally:
        await events.aclose()
        _redact_stored(state, ctx)
