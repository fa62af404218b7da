"""Sending spans in the background: a bounded queue and one daemon thread that posts batches.

The application's thread only appends an ended span to a deque (`enqueue`); it never waits on the network
and nothing here raises into it. The sender posts up to `batch_size` spans per request to
`POST /api/ingest/spans`, every `flush_interval_s` or as soon as a batch is full, retrying a failed post
(connection errors, 429, 5xx) with exponential backoff. What cannot be kept is dropped and counted: a span
arriving at a full queue, and a batch whose retries ran out or that the server refused (4xx). Drops are
reported by a one-line warning on the `pilothouse.sdk` logger (at most every `WARN_EVERY_S`) and by the
`dropped` counter. Everything still queued is sent at exit (`atexit`) or on `flush()`.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from pilothouse.sdk.tracing.wire import batch_json

if TYPE_CHECKING:
    import httpx

    from pilothouse.sdk.tracing.spans import Span

log = logging.getLogger("pilothouse.sdk")

INGEST_PATH = "/api/ingest/spans"
WARN_EVERY_S = 30.0


class Exporter(Protocol):
    dropped: int

    def enqueue(self, span: Span) -> None: ...

    def flush(self, timeout: float = 5.0) -> bool: ...

    def shutdown(self, timeout: float = 5.0) -> None: ...


class NullExporter:
    """Tracing switched off (`configure(enabled=False)` or PILOTHOUSE_TRACING=off): spans are discarded."""

    dropped = 0

    def enqueue(self, span: Span) -> None:
        return None

    def flush(self, timeout: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        return None


class BatchExporter:
    """Posts spans to a Pilothouse server from one background thread (see the module docstring)."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        capture: bool = True,
        max_queue: int = 10_000,
        batch_size: int = 512,
        flush_interval_s: float = 0.5,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.capture = capture
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.sent = 0  # spans the server accepted
        self.dropped = 0  # spans lost: queue full, retries exhausted or refused by the server
        self.last_error: str | None = None
        self._client = client
        self._queue: deque[Span] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._drop_lock = threading.Lock()
        self._warned_at = 0.0

    # -- the application's side -------------------------------------------------------------------------
    def enqueue(self, span: Span) -> None:
        queue = self._queue
        if len(queue) >= self.max_queue:
            self._drop(1, "the queue is full")
            return
        queue.append(span)
        if self._thread is None:
            self._start()
        elif len(queue) == self.batch_size:
            self._wake.set()

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued now; True when all of it was handled (sent or dropped) within `timeout`."""
        if self._thread is None:
            return not self._queue
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush, then stop the sender (retries are cut short: the process is ending)."""
        self._stopping = True
        self.flush(timeout)
        if self.dropped:
            log.warning("pilothouse: %d spans were dropped in this process (%s)", self.dropped, self.last_error)

    # -- the sender thread --------------------------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="pilothouse-span-exporter", daemon=True)
            thread.start()
            self._thread = thread
            atexit.register(self.shutdown)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._drain()
            except Exception as exc:  # a bug of ours must not stop the sender
                log.warning("pilothouse: the span exporter failed (%s: %s)", type(exc).__name__, exc)
            with self._idle:
                self._idle.notify_all()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            with self._idle:
                self._busy = True
                batch: list[Span] = []
                while queue and len(batch) < self.batch_size:
                    batch.append(queue.popleft())
            try:
                self._send(batch)
            finally:
                with self._idle:
                    self._busy = False

    def _send(self, batch: list[Span]) -> None:
        try:
            body = batch_json(batch, capture=self.capture)
        except Exception as exc:
            self._drop(len(batch), f"could not encode the batch: {type(exc).__name__}: {exc}")
            return
        attempts = 1 if self._stopping else max(1, self.retries)
        reason = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            status, reason = self._post(body)
            if status is not None and status < 300:
                self.sent += len(batch)
                return
            if status is not None and status < 500 and status != 429:
                break  # refused: the same batch would be refused again
        self._drop(len(batch), reason)

    def _post(self, body: dict[str, Any]) -> tuple[int | None, str]:
        """(status, why it failed); status None when the server could not be reached."""
        import httpx

        try:
            client = self._http()
            headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            response = client.post(INGEST_PATH, json=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"cannot reach {self.url}: {type(exc).__name__}: {exc}"
        if response.status_code < 300:
            return response.status_code, ""
        return response.status_code, f"the server answered {response.status_code}: {response.text[:300]}"

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            from pilothouse.sdk.client import DEFAULT_URL, default_api_key

            self.url = (self.url or os.environ.get("PILOTHOUSE_URL") or DEFAULT_URL).rstrip("/")
            self.api_key = self.api_key or default_api_key()
            self._client = httpx.Client(base_url=self.url, timeout=self.timeout_s)
        return self._client

    def _drop(self, count: int, reason: str) -> None:
        with self._drop_lock:
            self.dropped += count
            self.last_error = reason
            now = time.monotonic()
            if now - self._warned_at < WARN_EVERY_S:
                return
            self._warned_at = now
        log.warning("pilothouse: dropped %d spans so far (%s)", self.dropped, reason)


def _from_environment() -> Exporter:
    if os.environ.get("PILOTHOUSE_TRACING", "").lower() in ("0", "off", "false", "no"):
        return NullExporter()
    return BatchExporter()


ACTIVE: Exporter = _from_environment()
"""Where ended spans go; replaced by `configure()`."""


def configure(
    url: str | None = None,
    api_key: str | None = None,
    *,
    enabled: bool = True,
    capture: bool = True,
    max_queue: int = 10_000,
    batch_size: int = 512,
    flush_interval_s: float = 0.5,
    retries: int = 3,
    backoff_s: float = 0.5,
    client: httpx.Client | None = None,
) -> Exporter:
    """Where and how spans are sent (defaults: PILOTHOUSE_URL and PILOTHOUSE_API_KEY, as for `Pilothouse()`).

    `capture=False` sends no inputs and outputs (names, timings, usage and attributes only); `enabled=False`
    discards spans. The previous exporter is flushed first. Returns the new exporter (its `sent` and
    `dropped` counters)."""
    global ACTIVE
    previous = ACTIVE
    if enabled:
        ACTIVE = BatchExporter(
            url,
            api_key,
            capture=capture,
            max_queue=max_queue,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            retries=retries,
            backoff_s=backoff_s,
            client=client,
        )
    else:
        ACTIVE = NullExporter()
    previous.shutdown(timeout=2.0)
    return ACTIVE


def flush(timeout: float = 5.0) -> bool:
    """Send every span ended so far; True when all were handled within `timeout` seconds."""
    return ACTIVE.flush(timeout)
