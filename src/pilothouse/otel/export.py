"""Exporting our traces to an OpenTelemetry collector over OTLP/HTTP (protobuf), in the background.

The trace sink hands every batch it stored to `OtlpExporter.offer` (tracing/sink.py listeners), so what goes
out is the stored form: after the call's storage redaction and the project's content capture. `offer` never
blocks and never raises: traces wait in a bounded queue (full: the newest are dropped and counted), and one
thread sends batches of up to `batch_max` spans, retrying refusals the OTLP spec calls retryable (429, 502,
503, 504, network errors) with exponential backoff, honouring `Retry-After`. A batch still refused after
`retries` tries, or refused for good (400 and the like), is dropped and counted: the collector being down
never slows or fails a request. `close()` sends what is queued, within a deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from pilothouse.otel.encode import to_request
from pilothouse.tracing.model import TraceRecord

log = logging.getLogger("pilothouse.otel")

RETRYABLE = frozenset({429, 502, 503, 504})
_BACKOFF_MAX_S = 30.0


class OtlpExporter:
    """Sends traces to `endpoint` (the full URL, e.g. `http://collector:4318/v1/traces`)."""

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        service_name: str = "pilothouse",
        batch_max: int = 512,
        queue_max: int = 10_000,
        retries: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.service_name = service_name
        self.batch_max = batch_max
        self.queue_max = queue_max
        self.retries = retries
        self.backoff_s = backoff_s
        self.exported = 0  # spans the collector accepted
        self.rejected = 0  # spans the collector reported as rejected (partial success)
        self.dropped = 0  # spans dropped: queue full, or a batch refused after every retry
        self._client = httpx.Client(
            headers={**(headers or {}), "content-type": "application/x-protobuf"},
            timeout=timeout_s,
            transport=transport,
        )
        self._queue: deque[TraceRecord] = deque()
        self._queued_spans = 0
        self._lock = threading.Condition()
        self._in_flight = 0  # spans taken by the sender thread and not yet sent or dropped
        self._closing = False
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name="pilothouse-otlp-exporter", daemon=True)
        self._thread.start()

    def offer(self, traces: list[TraceRecord]) -> None:
        """Queue stored traces for export; never blocks (the sink's writer thread calls it)."""
        with self._lock:
            if self._closing:
                return
            for trace in traces:
                size = len(trace.spans)
                if not size:
                    continue
                if self._queued_spans + size > self.queue_max:
                    self.dropped += size
                    continue
                self._queue.append(trace)
                self._queued_spans += size
            self._lock.notify()

    def _take(self) -> list[TraceRecord] | None:
        """The next batch (whole traces, about `batch_max` spans); None once closing and empty."""
        with self._lock:
            while not self._queue and not self._closing:
                self._lock.wait()
            if not self._queue:
                return None
            batch: list[TraceRecord] = []
            spans = 0
            while self._queue and (not batch or spans + len(self._queue[0].spans) <= self.batch_max):
                trace = self._queue.popleft()
                batch.append(trace)
                spans += len(trace.spans)
            self._queued_spans -= spans
            self._in_flight = spans
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._send(batch)
            except Exception as exc:  # a bug here must not stop the exporter
                log.error("OTLP export failed (%s: %s); %d traces dropped", type(exc).__name__, exc, len(batch))
                self.dropped += sum(len(t.spans) for t in batch)
            with self._lock:
                self._in_flight = 0

    def _send(self, batch: list[TraceRecord]) -> None:
        spans = sum(len(t.spans) for t in batch)
        body = to_request(batch, service_name=self.service_name).SerializeToString()
        wait = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(self.endpoint, content=body)
            except httpx.HTTPError as exc:
                status, why, retry_after = None, f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code < 300:
                    answer = ExportTraceServiceResponse()
                    try:
                        answer.ParseFromString(response.content)
                    except Exception:  # a collector that answers nothing parseable still took the spans
                        answer = ExportTraceServiceResponse()
                    rejected = answer.partial_success.rejected_spans
                    if rejected or answer.partial_success.error_message:
                        log.warning("OTLP collector: %s", answer.partial_success.error_message or "spans rejected")
                    self.rejected += rejected
                    self.exported += spans - rejected
                    return
                status, why = response.status_code, f"HTTP {response.status_code}"
                retry_after = _retry_after(response.headers.get("retry-after"))
            if (status is not None and status not in RETRYABLE) or attempt == self.retries or self._closing_now():
                break
            time.sleep(min(retry_after if retry_after is not None else wait, _BACKOFF_MAX_S))
            wait *= 2
        log.warning("OTLP export to %s failed (%s); %d spans dropped", self.endpoint, why, spans)
        self.dropped += spans

    def _closing_now(self) -> bool:
        return self._closing and self._deadline is not None and time.monotonic() > self._deadline

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far was sent (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._queue and not self._in_flight:
                    return True
            time.sleep(0.01)
        return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (retries cut short at the deadline), then stop."""
        with self._lock:
            self._closing = True
            self._deadline = time.monotonic() + timeout_s
            self._lock.notify_all()
        self._thread.join(timeout=timeout_s + 1.0)
        self._client.close()


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
