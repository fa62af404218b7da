"""Watching for a gateway client that goes away, so its upstream call stops instead of running on unpaid.

Once a request's body is read, the next ASGI `receive()` returns only when the client disconnects (or the
response is complete). One task per request waits for it. `ClientWatch` is the HTTP face's `CallHooks`
(gateway/call.py): while the pipeline's route stage awaits the upstream call (between `before_upstream` and
`after_upstream`: a whole answer, an embedding, a stream before its first chunk) a disconnect cancels the
request's own task, which cancels the upstream call at the await it is in: its connection is closed, its
retries and backoffs never start. The trace stage then asks `absorbs_cancel()`, takes that cancellation back
and records the call as abandoned. A client that left before the call (during admission) raises CallerLeft in
`before_upstream`, so no call is made. Outside that window (admission, settlement, storing the trace) a
disconnect only sets `left`, so nothing half-done there is cut; a stream's relay checks `left` between chunks.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Receive

from pilothouse.gateway.call import CallerLeft


class ClientWatch:
    """The disconnect watch of one request: `start()` it once the body is read, `close()` it at the end."""

    __slots__ = ("_armed", "_cancelled", "_task", "_watcher", "left")

    def __init__(self) -> None:
        self.left = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None, "a ClientWatch is made inside the request's task"
        self._task = task
        self._armed = False
        self._cancelled = False
        self._watcher: asyncio.Task[None] | None = None

    def start(self, receive: Receive) -> None:
        """Start watching; call once the request's body has been read."""
        self._watcher = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.left.set()
        if self._armed:
            self._cancelled = True
            self._task.cancel()

    def before_upstream(self) -> None:
        """From now on a disconnect cancels the request; raises CallerLeft when the client has already left."""
        if self.left.is_set():
            raise CallerLeft
        self._armed = True

    def after_upstream(self) -> None:
        self._armed = False

    def absorbs_cancel(self) -> bool:
        """Called on CancelledError: True when the watch cancelled the request (the client left), and no other
        cancellation is pending; the cancellation is then taken back and the call recorded as abandoned."""
        self._armed = False
        if not self._cancelled:
            return False
        self._cancelled = False
        return self._task.uncancel() == 0

    async def close(self) -> None:
        self._armed = False
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
