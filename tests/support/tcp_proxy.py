"""A TCP proxy on 127.0.0.1 (an ephemeral port) that a test can cut and restore, to take a service such as
Redis away from the servers under test and give it back, without touching the service itself.

    proxy = TcpProxy("127.0.0.1", 6379)
    port = proxy.start()          # point the servers at redis://127.0.0.1:{port}/0
    proxy.cut()                   # every open connection is reset; new ones are closed at once
    proxy.restore()               # new connections are forwarded again
    proxy.stop()

`cut(hold=True)` holds new connections open without forwarding anything instead (a silent partition: the
client waits for its own timeout). The proxy runs on its own event loop thread, so synchronous tests can
drive it; every control call waits at most a few seconds, and the proxy stops by itself after `lifetime_s`
so a test that dies half-way cannot leave it running.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

CONTROL_TIMEOUT_S = 10.0
CHUNK = 64 * 1024


class TcpProxy:
    """Forwards 127.0.0.1:`port` to the target until cut; see the module docstring."""

    def __init__(self, target_host: str, target_port: int, *, lifetime_s: float = 900.0) -> None:
        self.target = (target_host, target_port)
        self.lifetime_s = lifetime_s
        self.port = 0
        self.accepted = 0
        """Connections the proxy accepted (forwarded or not)."""
        self.refused = 0
        """Connections closed (or held) at once because the proxy was cut."""
        self._cut = False
        self._hold = False
        self._conns: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._expiry: asyncio.Task[None] | None = None

    # -- control (from the test's thread) --------------------------------------------------------------
    def start(self) -> int:
        """Listen on an ephemeral port; returns it."""
        self._thread.start()
        self._call(self._listen())
        return self.port

    def cut(self, *, hold: bool = False) -> None:
        """Reset every open connection; from now on close new ones at once (or, with `hold`, keep them
        open and forward nothing)."""
        self._call(self._do_cut(hold))

    def restore(self) -> None:
        """Forward new connections again (connections held during the cut stay dead: they are closed)."""
        self._call(self._do_restore())

    def stop(self) -> None:
        """Close the listener and every connection, then end the loop thread. Safe to call twice."""
        if not self._thread.is_alive():  # never started, stopped, or expired
            if self._thread.ident is not None and not self._loop.is_closed():
                self._loop.close()
            return
        with contextlib.suppress(RuntimeError, TimeoutError):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CONTROL_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=CONTROL_TIMEOUT_S)

    # -- the loop's side ---------------------------------------------------------------------------------
    async def _expire(self) -> None:
        await asyncio.sleep(self.lifetime_s)
        await self._shutdown()
        self._loop.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._expiry = self._loop.create_task(self._expire())

    async def _do_cut(self, hold: bool) -> None:
        self._cut, self._hold = True, hold
        for writer in list(self._conns):
            writer.transport.abort()
        self._conns.clear()

    async def _do_restore(self) -> None:
        self._cut = False
        for writer in list(self._conns):  # held during the cut: never forwarded, so closed now
            writer.transport.abort()
        self._conns.clear()

    async def _shutdown(self) -> None:
        if self._expiry is not None and self._expiry is not asyncio.current_task():
            self._expiry.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._do_cut(False)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CONTROL_TIMEOUT_S / 2)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._cut:
            self.refused += 1
            if self._hold:
                self._conns.add(writer)  # reset by restore() or stop()
            else:
                writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), CONTROL_TIMEOUT_S)
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        if self._cut:  # cut while connecting
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self._conns.update((writer, up_writer))
        self._spawn(self._pump(reader, up_writer, writer))
        self._spawn(self._pump(up_reader, writer, up_writer))

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, src_writer: asyncio.StreamWriter
    ) -> None:
        """Copy src to dst until either side ends; then close both directions."""
        try:
            while data := await src.read(CHUNK):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (dst, src_writer):
                self._conns.discard(w)
                w.transport.abort()
