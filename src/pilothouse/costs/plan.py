"""The requests a forecast is about: N calls of a registered prompt, or a list of OpenAI chat bodies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.gateway.validation import parse_chat_body
from pilothouse.prompts.registry.lookup import get_version
from pilothouse.prompts.registry.refs import MODEL_PREFIX, parse_ref
from pilothouse.prompts.registry.resolver import render_version

_ANY_MODEL = "-"  # stands in for a body's missing model while its other fields are checked


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request body, reduced to what its cost depends on; sent `count` times."""

    messages: list[dict[str, Any]]
    max_tokens: int | None
    tools: list[Any] | None
    count: int = 1


@dataclass(frozen=True, slots=True)
class PromptPlan:
    """N calls of one prompt version (a label's baseline version, as `get_version` resolves it)."""

    name: str
    version: int
    model: str | None
    """The model in the version's configuration."""
    request: PlannedRequest


def plan_prompt(
    conn: Connection, project_id: str, ref_text: str, variables: dict[str, Any] | None, n: int
) -> PromptPlan:
    """Render `ref_text` (`NAME`, `NAME@3`, `NAME@staging`, `NAME@sha:...`) with `variables`, the way the
    gateway does for `model: "prompt:REF"`: the version's `max_tokens` and `tools` apply."""
    try:
        ref = parse_ref(ref_text)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="prompt", code="invalid_prompt_ref") from None
    try:
        version = get_version(conn, project_id, ref)
    except NotFound as exc:
        exc.param = "prompt"
        raise
    template = version.template
    _, messages = render_version(version, variables or {}, param="prompt")
    config = template.get("config") or {}
    max_tokens = config.get("max_completion_tokens") or config.get("max_tokens")
    model = config.get("model")
    return PromptPlan(
        name=version.name,
        version=version.version,
        model=model if isinstance(model, str) and model else None,
        request=PlannedRequest(
            messages=messages,
            max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
            tools=config.get("tools") or None,
            count=n,
        ),
    )


def plan_bodies(bodies: Sequence[Any], *, first_index: int = 0) -> list[tuple[str | None, PlannedRequest]]:
    """Each body checked like the gateway checks it (errors name `requests[i]`, counting from
    `first_index`), with its own model (None when it names none)."""
    planned: list[tuple[str | None, PlannedRequest]] = []
    for i, body in enumerate(bodies, start=first_index):
        if not isinstance(body, dict):
            raise InvalidRequest(f"requests[{i}] must be a chat-completions body (a JSON object)", param="requests")
        model = body.get("model")
        if isinstance(model, str) and model.startswith(MODEL_PREFIX):
            raise InvalidRequest(
                f"requests[{i}]: prompt references ({model!r}) are not expanded in a request file; "
                "estimate a prompt with --prompt NAME[@REF] (the API's 'prompt') instead",
                param="requests",
            )
        try:
            parsed = parse_chat_body({**body, "model": model if isinstance(model, str) and model else _ANY_MODEL})
        except InvalidRequest as exc:
            raise InvalidRequest(f"requests[{i}]: {exc.message}", param="requests", code=exc.code) from None
        tools = parsed.params.get("tools")
        planned.append(
            (
                None if parsed.model == _ANY_MODEL else parsed.model,
                PlannedRequest(parsed.messages, parsed.max_tokens, tools if isinstance(tools, list) else None),
            )
        )
    return planned
