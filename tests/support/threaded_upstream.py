"""A scripted local OpenAI-compatible upstream on its own event-loop thread, so synchronous tests can drive it:
subclasses implement `_chat` (POST /v1/chat/completions); `start()` returns the root URL (an OpenAI base_url is
`url + "/v1"`), `stop()` ends it."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web
from aiohttp.test_utils import TestServer


class ThreadedUpstream:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._server = TestServer(app, host="127.0.0.1")
        self.url = ""

    def start(self) -> str:
        """Start serving; returns the root URL."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._server.start_server(), self._loop).result(timeout=30)
        self.url = str(self._server.make_url("/")).rstrip("/")
        return self.url

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError
