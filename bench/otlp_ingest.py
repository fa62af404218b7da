"""OTLP ingest throughput: spans per second per core into SQLite and PostgreSQL.

Target: >= 15,000 spans/s per core (the OpenTelemetry Collector's published sizing). One thread (one core) runs
the receiver's two halves separately on the same requests, so each is measured on its own:

* decode + map: protobuf `ExportTraceServiceRequest` -> our TraceRecords (otel/ingest.py, otel/genai_map.py);
* store: those traces into the database (otel/ingest_store.py: one transaction per request, rollups, search).

Requests are what an instrumented GenAI app exports: batches of 512 spans, traces of 8 spans (an agent step,
3 chat calls with usage and short input/output messages, 2 tool calls, 2 plain spans).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/otlp_ingest.py --spans 40000 --backend sqlite --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy import create_engine, text

from pilothouse.gateway.pricing import default_price_book
from pilothouse.otel.anyvalue import add_attributes
from pilothouse.otel.genai_map import SpanMapper
from pilothouse.otel.ingest import PROTOBUF, decode, to_traces
from pilothouse.otel.ingest_store import store_batch
from pilothouse.otel.span_costs import SpanCosts
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BATCH, TRACE_SPANS = 512, 8
MESSAGES_IN = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is parcel P-123?"}]}])
MESSAGES_OUT = json.dumps(
    [{"role": "assistant", "parts": [{"type": "text", "content": "It ships today."}], "finish_reason": "stop"}]
)


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
            attrs: dict[str, object] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}
        else:
            span.span_id = secrets.token_bytes(8)
            span.parent_span_id = root
            if position <= 3:
                attrs = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 120,
                    "gen_ai.usage.output_tokens": 30,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.input.messages": MESSAGES_IN,
                    "gen_ai.output.messages": MESSAGES_OUT,
                }
            elif position <= 5:
                attrs = {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "track",
                    "gen_ai.tool.call.arguments": '{"id": "P-123"}',
                }
            else:
                attrs = {"http.request.method": "GET", "url.full": "https://api.example.com/parcels/P-123"}
        span.trace_id = trace_id
        span.name = str(attrs["gen_ai.operation.name"]) if "gen_ai.operation.name" in attrs else "GET /parcels"
        span.kind = 3
        span.start_time_unix_nano = now + i * 1000
        span.end_time_unix_nano = now + i * 1000 + 50_000_000
        add_attributes(span.attributes, attrs)
    return request.SerializeToString()


def run(store: Store, label: str, total: int) -> tuple[float, float]:
    with store.begin() as conn:
        project = create_project(conn, "bench").id
    mapper = SpanMapper(SpanCosts(default_price_book()))
    bodies = [_request(BATCH) for _ in range(max(total // BATCH, 1))]
    spans = len(bodies) * BATCH
    t0 = time.process_time()
    batches = [to_traces(decode(b, PROTOBUF), project_id=project, api_key_id=None, mapper=mapper) for b in bodies]
    t1 = time.process_time()
    w0 = time.perf_counter()
    c0 = time.process_time()
    for batch in batches:
        stored = store_batch(store, batch)
        assert stored.stored == BATCH, stored
    c1 = time.process_time()
    w1 = time.perf_counter()
    decode_rate = spans / (t1 - t0)
    store_rate = spans / (w1 - w0)
    both = spans / ((t1 - t0) + (w1 - w0))
    print(
        f"{label:<11} {spans} spans | decode+map {decode_rate:>9,.0f} spans/s (CPU) | store {store_rate:>9,.0f} "
        f"spans/s (wall; this process's CPU {spans / (c1 - c0):,.0f}/s) | end to end {both:>9,.0f} spans/s "
        f"| target 15,000: x{both / 15000:.2f}"
    )
    return decode_rate, store_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--spans", type=int, default=40_960)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for backend in args.backend or ["sqlite"]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                store = open_store(f"sqlite:///{Path(folder) / 'bench.db'}")
                run(store, "sqlite", args.spans)
                store.dispose()
            continue
        name = f"bench_otlp_{secrets.token_hex(4)}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            store = open_store(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
            run(store, "postgresql", args.spans)
            store.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()


if __name__ == "__main__":
    main()
