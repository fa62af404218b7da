"""An LLM step: one model call through the gateway (in process, source `flow`), its answer into the state.

Either `messages(state)` sent to `model`, or a prompt reference `prompt="name@label"` rendered with
`variables(state)` (the prompt's own model and settings apply; the gateway expands it, so prompt versions and
labels work as on the HTTP path). `params` are the request's other fields (`temperature`, `max_tokens`,
`response_format`, ...). The answer's text goes to state field `output`; with `parse="json"` it is parsed as
JSON first (an answer that is not JSON fails the step, and a retry policy may ask again).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from pilothouse.flows.calls import chat_answer
from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import FlowDefinitionError, FlowError
from pilothouse.flows.steps.base import StepResult

StateFn = Callable[[Any], Any]
_RESERVED = ("model", "messages", "variables", "stream", "stream_options")


class LlmOutputInvalid(FlowError):
    """The answer is not what the step asked for (not JSON with `parse="json"`); another call may do better."""

    retryable = True


class LlmStep:
    kind: ClassVar[str] = "llm"

    def __init__(
        self,
        *,
        model: str | None = None,
        messages: StateFn | list[dict[str, Any]] | None = None,
        prompt: str | None = None,
        variables: StateFn | Mapping[str, Any] | None = None,
        output: str | None = None,
        params: Mapping[str, Any] | None = None,
        parse: Literal["text", "json"] = "text",
    ) -> None:
        if (messages is None) == (prompt is None):
            raise FlowDefinitionError("an llm step takes either messages=... (with model=...) or prompt='name@label'")
        if messages is not None and not model:
            raise FlowDefinitionError("an llm step with messages=... needs model=... (e.g. model='local')")
        if prompt is not None and model:
            raise FlowDefinitionError(
                "an llm step with prompt=... uses the prompt's own model: drop model=... (or set it in the prompt)"
            )
        if prompt is None and variables is not None:
            raise FlowDefinitionError("variables=... go with prompt='name@label'")
        reserved = sorted(set(params or {}) & set(_RESERVED))
        if reserved:
            raise FlowDefinitionError(f"an llm step's params cannot set {', '.join(reserved)}")
        if parse not in ("text", "json"):
            raise FlowDefinitionError(f"parse must be 'text' or 'json', not {parse!r}")
        self.model = model
        self.messages = messages
        self.prompt = prompt
        self.variables = variables
        self.output = output
        self.params = dict(params or {})
        self.parse = parse

    def body(self, state: BaseModel) -> dict[str, Any]:
        """The chat request for `state`."""
        if self.prompt is not None:
            variables = self.variables(state) if callable(self.variables) else dict(self.variables or {})
            if not isinstance(variables, Mapping):
                raise TypeError(f"variables(state) returned {type(variables).__name__}: it must return a dict")
            return {**self.params, "model": f"prompt:{self.prompt}", "messages": [], "variables": dict(variables)}
        messages = self.messages(state) if callable(self.messages) else self.messages
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if not isinstance(messages, list) or not messages:
            raise TypeError("messages(state) must return a non-empty list of chat messages (or a text)")
        return {**self.params, "model": self.model, "messages": [dict(m) for m in messages]}

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        body = self.body(state)
        answer = await chat_answer(ctx, body)
        content = answer.content
        value: Any = content
        if self.parse == "json":
            try:
                value = json.loads(content)
            except ValueError:
                raise LlmOutputInvalid(
                    f"step {ctx.step!r}: the model's answer is not JSON (parse='json'): {content[:200]!r}"
                ) from None
        finish = (answer.payload.get("choices") or [{}])[0].get("finish_reason")
        ctx.span.attributes.update(
            {
                "gen_ai.request.model": body["model"],
                "gen_ai.response.finish_reasons": [finish] if finish else [],
                "gen_ai.usage.input_tokens": answer.input_tokens,
                "gen_ai.usage.output_tokens": answer.output_tokens,
                "pilothouse.cost_usd": str(answer.cost_usd),
            }
        )
        output = {"content": value, "finish_reason": finish, **answer.usage(), "trace_id": answer.trace_id}
        step_input = {"variables": body["variables"]} if self.prompt else {"messages": body["messages"]}
        updates = {self.output: value} if self.output else {}
        return StepResult(updates=updates, output=output, input={"model": body["model"], **step_input})
