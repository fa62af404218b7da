"""A local OpenAI-compatible upstream whose answer a test's policy chooses from the request: `policy(body)`
returns the assistant message (text and/or tool calls; tests/flows/steps/fakes.py builds them). Whole answers
only, with usage. It runs on its own event-loop thread (`start()` / `stop()`); `bodies` keeps what it was sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.support.threaded_upstream import ThreadedUpstream

Policy = Callable[[dict[str, Any]], dict[str, Any]]


def _no_policy(body: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("the test set no policy on the upstream")


class PolicyUpstream(ThreadedUpstream):
    def __init__(self) -> None:
        super().__init__("policy-upstream")
        self.policy: Policy = _no_policy
        self.bodies: list[dict[str, Any]] = []

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        try:
            message = self.policy(body)
        except AssertionError as exc:  # the test sees it as the upstream's 500
            return web.json_response({"error": {"message": str(exc), "type": "server_error"}}, status=500)
        answer = {
            "id": "chatcmpl-policy",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }
        return web.json_response(answer)
