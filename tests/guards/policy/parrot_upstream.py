"""A local OpenAI-compatible upstream that gives its system prompt away: the answer is `"My instructions say: "`
followed by the text of every system message it was sent (whole, or streamed a few characters a chunk, so a
canary is split over chunks). It keeps the messages of each request (`received`), so a test can check what the
model was sent. It runs on its own event loop thread (`start()` / `stop()`), so synchronous tests can drive it.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from tests.support.threaded_upstream import ThreadedUpstream

PREFIX = "My instructions say: "


class ParrotUpstream(ThreadedUpstream):
    def __init__(self, piece: int = 5) -> None:
        super().__init__("parrot-upstream")
        self.piece = piece
        self.received: list[list[dict[str, Any]]] = []

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = list(body.get("messages") or [])
        self.received.append(messages)
        system = " ".join(str(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
        text = PREFIX + system
        usage = {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60}
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "chatcmpl-parrot",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> None:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            chunk = {"id": "chatcmpl-parrot", "object": "chat.completion.chunk", "created": int(time.time())}
            chunk.update({"model": body.get("model"), "choices": choices, **extra})
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

        await send({"role": "assistant", "content": ""})
        for i in range(0, len(text), self.piece):
            await send({"content": text[i : i + self.piece]})
        await send({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            await send(None, usage=usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
