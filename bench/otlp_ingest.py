"""OTLP ingest throughput: spans per second per core into SQLite and PostgreSQL, side by side with peers.

Target: >= 15,000 spans/s per core (the OpenTelemetry Collector's published sizing). "Per core" is spans over
the CPU time they cost: this process's (decoding, mapping, the write path, and SQLite itself, which runs in
process) plus, for PostgreSQL on this machine, its server processes serving the benchmark's connections (read
from /proc; the WAL writer and checkpointer are not counted). Wall rates of one thread are printed too: on a
shared machine they include waiting for the CPU.

Stages, over the same requests; the first two run request by request as the receiver runs them (decode and
map a request, store it, drop it), the CPU clocks read once around all requests (a reading costs CPU too):

* decode + map: protobuf `ExportTraceServiceRequest` -> our TraceRecords (otel/ingest.py, otel/genai_map.py),
  its share read with process_time around each request's mapping;
* store: those traces through the write path (otel/ingest_store.py: merge upsert, spans by COPY/executemany,
  rollups, full-text index; one transaction per request): the rest of the process's CPU, and the server's;
* http (with --http): the whole `POST /v1/traces` through the application (auth, body limits, the receiver,
  the answer), in process (Starlette's TestClient: no sockets; the client's own CPU and the application's
  background work are counted with it);
* server (with --server): the same requests to a real `pilothouse up` over a socket, sent one after another by
  this process; "per core" is spans over the server process's CPU (all its threads) and the database's, not the
  client's.

Peers, printed as ratios:

* decode ceiling: protobuf parsing alone (upb), the floor of any Python receiver using opentelemetry-proto;
* insert floor: the same span rows, already encoded, in one bulk insert per request and nothing else;
* OTel SDK: what the opentelemetry-sdk spends per span to create and export the same spans (attributes set,
  ended, into its InMemorySpanExporter), where that package is installed.

Requests are what an instrumented GenAI app exports: batches of 512 spans, traces of 8 spans (an agent step,
3 chat calls with usage and short input/output messages, 2 tool calls, 2 HTTP spans).

    .venv/bin/python bench/otlp_ingest.py --spans 40960 --backend sqlite --backend postgresql --http --server
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from pilothouse.gateway.pricing import default_price_book
from pilothouse.otel.anyvalue import add_attributes
from pilothouse.otel.genai_map import SpanMapper
from pilothouse.otel.ingest import PROTOBUF, Batch, decode, to_traces
from pilothouse.otel.ingest_store import store_batch
from pilothouse.otel.span_costs import SpanCosts
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.tracing import span_table
from pilothouse.tracing.model import TraceRecord
from scratch_stores import scratch_store, server_cpu

BATCH, TRACE_SPANS, TARGET = 512, 8, 15_000
MESSAGES_IN = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is parcel P-123?"}]}])
MESSAGES_OUT = json.dumps(
    [{"role": "assistant", "parts": [{"type": "text", "content": "It ships today."}], "finish_reason": "stop"}]
)


def _attributes(position: int) -> dict[str, Any]:
    if position == 0:
        return {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}
    if position <= 3:
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.input.messages": MESSAGES_IN,
            "gen_ai.output.messages": MESSAGES_OUT,
        }
    if position <= 5:
        return {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "track",
            "gen_ai.tool.call.arguments": '{"id": "P-123"}',
        }
    return {"http.request.method": "GET", "url.full": "https://api.example.com/parcels/P-123"}


def _request(spans: int) -> bytes:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    add_attributes(rs.resource.attributes, {"service.name": "bench-app", "service.version": "1.0"})
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    now = time.time_ns()
    trace_id, root = b"", b""
    for i in range(spans):
        position = i % TRACE_SPANS
        span = ss.spans.add()
        if position == 0:
            trace_id, root = secrets.token_bytes(16), secrets.token_bytes(8)
            span.span_id = root
        else:
            span.span_id = secrets.token_bytes(8)
            span.parent_span_id = root
        attrs = _attributes(position)
        span.trace_id = trace_id
        span.name = str(attrs.get("gen_ai.operation.name", "GET /parcels"))
        span.kind = Span.SPAN_KIND_CLIENT
        span.start_time_unix_nano = now + i * 1000
        span.end_time_unix_nano = now + i * 1000 + 50_000_000
        add_attributes(span.attributes, attrs)
    return request.SerializeToString()


class Clock:
    """Wall time, this process's CPU time, and the CPU time of the database's server processes."""

    def __init__(self, server_cpu: Callable[[], float]) -> None:
        self._server_cpu = server_cpu
        self.wall = self.cpu = self.server = 0.0

    @contextmanager
    def run(self) -> Iterator[None]:
        w, c, s = time.perf_counter(), time.process_time(), self._server_cpu()
        yield
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        self.server += self._server_cpu() - s


def _per_core(spans: int, clock: Clock) -> float:
    return spans / (clock.cpu + clock.server) if clock.cpu + clock.server > 0 else float("nan")


def _otel_sdk_rate(spans: int) -> float | None:
    """Spans/s of CPU the opentelemetry-sdk spends creating and exporting the same spans (None: not installed)."""
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        return None
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    attributes = [_attributes(i % TRACE_SPANS) for i in range(TRACE_SPANS)]
    start = time.process_time()
    for i in range(spans):
        with tracer.start_as_current_span("span", attributes=attributes[i % TRACE_SPANS]):
            pass
        if i % BATCH == BATCH - 1:
            exporter.clear()
    rate = spans / (time.process_time() - start)
    provider.shutdown()
    return rate


def run(store: Store, label: str, total: int, *, http: bool, server: bool, server_cpu: Callable[[], float]) -> None:
    with store.begin() as conn:
        project = create_project(conn, f"bench-{secrets.token_hex(3)}").id
    mapper = SpanMapper(SpanCosts(default_price_book()))
    bodies = [_request(BATCH) for _ in range(max(total // BATCH, 1))]
    spans = len(bodies) * BATCH

    t0 = time.process_time()
    for body in bodies:
        decode(body, PROTOBUF)
    decode_rate = spans / (time.process_time() - t0)
    # Request by request, as the receiver does: decode and map, then store (one transaction), nothing kept
    # between requests (holding every mapped batch would make the collector rescan them all). One clock
    # reading around all requests (a reading costs CPU of its own); the mapping's share from process_time.
    store_clock, map_cpu, map_wall = Clock(server_cpu), 0.0, 0.0
    with store_clock.run():
        for body in bodies:
            t0, w0 = time.process_time(), time.perf_counter()
            batch = to_traces(decode(body, PROTOBUF), project_id=project, api_key_id=None, mapper=mapper)
            map_cpu += time.process_time() - t0
            map_wall += time.perf_counter() - w0
            stored = store_batch(store, batch)
            assert stored.stored == BATCH, stored
    store_clock.cpu -= map_cpu
    store_clock.wall -= map_wall
    batches = [to_traces(decode(b, PROTOBUF), project_id=project, api_key_id=None, mapper=mapper) for b in bodies]

    floor_clock = Clock(server_cpu)  # the same rows again (fresh ids): one bulk insert, nothing else
    encoded = [
        span_table.encode_all([s.row() for t in copies for s in t.spans])
        for copies in _fresh_copies(batches, project, store)
    ]
    with floor_clock.run():
        for values in encoded:
            with store.begin() as conn:
                span_table.insert(conn, values)

    ours = Clock(server_cpu)
    ours.cpu, ours.wall, ours.server = map_cpu + store_clock.cpu, map_wall + store_clock.wall, store_clock.server
    per_core, floor = _per_core(spans, ours), _per_core(spans, floor_clock)
    store_rate = _per_core(spans, store_clock)
    print(
        f"{label:<10} {spans} spans | decode+map {spans / map_cpu:>7,.0f}/s CPU | store {store_rate:>7,.0f}/s CPU "
        f"({spans / store_clock.wall:,.0f}/s wall; process {store_clock.cpu:.3f} s, server {store_clock.server:.3f} s)"
    )
    print(
        f"{'':<10} end to end {per_core:>7,.0f} spans/s per core ({spans / ours.wall:,.0f}/s wall, one thread) "
        f"| target {TARGET:,}: x{per_core / TARGET:.2f} | decode ceiling {decode_rate:,.0f}/s: "
        f"x{per_core / decode_rate:.3f} | insert floor {floor:,.0f}/s: x{per_core / floor:.2f}"
    )
    if http:
        _run_http(store, [_request(BATCH) for _ in bodies], server_cpu)  # new trace ids, another project
    if server:
        _run_server(store, [_request(BATCH) for _ in bodies], server_cpu)


def _fresh_copies(batches: list[Batch], project: str, store: Store) -> Iterator[list[TraceRecord]]:
    """The traces of each batch under new ids, their trace rows stored (so the spans' foreign key holds)."""
    from pilothouse.store.ids import new_span_id, new_trace_id
    from pilothouse.store.tables import traces

    for batch in batches:
        copies = []
        for trace in batch.traces:
            copy = TraceRecord(project_id=project, name=trace.name, id=new_trace_id(), started_at=trace.started_at)
            for span in trace.spans:
                clone = dataclasses.replace(span)
                clone.trace_id, clone.id = copy.id, new_span_id()
                copy.spans.append(clone)
            copies.append(copy)
        with store.begin() as conn:
            conn.execute(traces.insert(), [c.row() for c in copies])
        yield copies


def _run_http(store: Store, bodies: list[bytes], server_cpu: Callable[[], float]) -> None:
    """The whole POST /v1/traces through the application, in process."""
    from starlette.testclient import TestClient

    from pilothouse.config import Settings
    from pilothouse.server.app import create_app

    key = ADMIN_KEY
    os.environ["PILOTHOUSE_ADMIN_KEY"] = key
    with tempfile.TemporaryDirectory() as folder:
        url = store.engine.url.render_as_string(hide_password=False)
        settings = Settings(data_dir=Path(folder), database_url=url, include_default_models=False, models=[])
        clock = Clock(server_cpu)
        headers = {"authorization": f"Bearer {key}", "content-type": PROTOBUF}
        with TestClient(create_app(settings)) as client:
            client.post("/v1/traces", content=_request(BATCH), headers=headers)  # warm: key cache, statements
            with clock.run():
                answers = [client.post("/v1/traces", content=body, headers=headers) for body in bodies]
            for answer in answers:
                assert answer.status_code == 200 and not answer.content, answer.content
    spans = len(bodies) * BATCH
    per_core = _per_core(spans, clock)
    print(
        f"{'':<10} http POST /v1/traces {per_core:>7,.0f} spans/s per core ({spans / clock.wall:,.0f}/s wall; "
        f"process {clock.cpu:.3f} s, server {clock.server:.3f} s) | target {TARGET:,}: x{per_core / TARGET:.2f}"
    )


ADMIN_KEY = "ph-admin-bench-" + secrets.token_hex(8)
"""The owner key both HTTP stages bootstrap with (the first start on a database makes it the owner's)."""

SERVER_CONFIG = """\
include_default_models = false
canary_check_interval_s = 0
monitor_interval_s = 0

[local]
preload = false
"""


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_server(store: Store, bodies: list[bytes], server_cpu: Callable[[], float]) -> None:
    """POST /v1/traces to a real `pilothouse up` (a subprocess, over a socket): spans per core of the server
    process (every thread of it, its background work included) plus the database's; this client's CPU is not
    counted (an exporter runs elsewhere)."""
    import httpx

    key = ADMIN_KEY
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "pilothouse.toml"
        config.write_text(SERVER_CONFIG, encoding="utf-8")
        url = store.engine.url.render_as_string(hide_password=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")} | {"PILOTHOUSE_ADMIN_KEY": key}
        exe = Path(sys.executable).with_name("pilothouse")
        args = [str(exe), "up", "--config", str(config), "--data-dir", folder, "--database-url", url]
        log = Path(folder) / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*args, "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=out, env=env
            )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            headers = {"authorization": f"Bearer {key}", "content-type": PROTOBUF}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                for _ in range(3):  # warm: the key cache, statements, the pool's connections
                    client.post("/v1/traces", content=_request(BATCH)).raise_for_status()
                time.sleep(1.0)
                wall, cpu, db = time.perf_counter(), _process_cpu(process.pid), server_cpu()
                answers = [client.post("/v1/traces", content=body) for body in bodies]
                wall = time.perf_counter() - wall
                cpu, db = _process_cpu(process.pid) - cpu, server_cpu() - db
            for answer in answers:
                assert answer.status_code == 200 and not answer.content, answer.content
        finally:
            process.terminate()
            process.wait(timeout=30)
    spans = len(bodies) * BATCH
    per_core = spans / (cpu + db)
    print(
        f"{'':<10} server POST /v1/traces {per_core:>7,.0f} spans/s per core ({spans / wall:,.0f}/s wall; "
        f"server process {cpu:.3f} s, database {db:.3f} s) | target {TARGET:,}: x{per_core / TARGET:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--spans", type=int, default=40_960)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--http", action="store_true", help="also through the application (POST /v1/traces)")
    parser.add_argument(
        "--server", action="store_true", help="also through a real `pilothouse up` over a socket (its CPU only)"
    )
    args = parser.parse_args()
    sdk = _otel_sdk_rate(min(args.spans, 20_480))
    if sdk is not None:
        print(f"peer: opentelemetry-sdk creates and exports {sdk:,.0f} spans/s of CPU (InMemorySpanExporter)")
    for backend in args.backend or ["sqlite"]:
        with scratch_store(backend, "bench_otlp") as store:
            run(store, backend, args.spans, http=args.http, server=args.server, server_cpu=server_cpu(store))


if __name__ == "__main__":
    main()
