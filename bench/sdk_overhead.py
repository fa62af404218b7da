"""SDK cost per span: `@pilothouse.observe` against `opentelemetry-sdk`, in the same process, side by side.

Both sides decorate the same no-op function and call it N times under one parent span; what is timed is the
application's thread: open the span, make it current, call, close it and hand it to the background side.
opentelemetry-sdk runs a `TracerProvider` with a `BatchSpanProcessor` over an exporter that discards; ours runs
its `BatchExporter` (bounded queue, sender thread) with a sender that discards (`--wire` also builds each
batch's JSON in the sender, as a real send does). Each side is run `--rounds` times, alternating, and the best
round per side is kept (the least disturbed by other load). Target: ours at most a quarter of theirs.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/sdk_overhead.py            # 50k spans per round, 5 rounds
    .venv/bin/python bench/sdk_overhead.py --spans 20000 --rounds 3 --wire

Results: docs/benchmarks.md ("Tracing SDK").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import pilothouse
from pilothouse.sdk.tracing import exporter as sdk_exporter
from pilothouse.sdk.tracing.spans import Span
from pilothouse.sdk.tracing.wire import batch_json


class DiscardOtel(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class DiscardOurs(sdk_exporter.BatchExporter):
    """Our exporter with a sender that discards (optionally after building the JSON body, `wire`)."""

    def __init__(self, *, wire: bool, max_queue: int) -> None:
        super().__init__(url="http://unused", max_queue=max_queue)
        self.wire = wire

    def _send(self, batch: list[Span]) -> None:
        if self.wire:
            batch_json(batch, capture=True)
        self.sent += len(batch)


def time_calls(fn: Callable[[int], int], n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - started


def ours(n: int, wire: bool) -> tuple[float, int]:
    active = DiscardOurs(wire=wire, max_queue=n + 10)
    previous, sdk_exporter.ACTIVE = sdk_exporter.ACTIVE, active

    @pilothouse.observe
    def work(i: int) -> int:
        return i + 1

    try:
        with pilothouse.span("bench", kind="step"):
            elapsed = time_calls(work, n)
        active.flush(timeout=60)
    finally:
        sdk_exporter.ACTIVE = previous
    return elapsed, active.sent + active.dropped


def theirs(n: int) -> tuple[float, int]:
    discard = DiscardOtel()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(discard, max_queue_size=n + 10))
    tracer = provider.get_tracer("bench")

    @tracer.start_as_current_span("work")
    def work(i: int) -> int:
        return i + 1

    with tracer.start_as_current_span("bench"):
        elapsed = time_calls(work, n)
    provider.force_flush()
    provider.shutdown()
    return elapsed, discard.count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--wire", action="store_true", help="our sender builds each batch's JSON body")
    args = parser.parse_args(argv)
    best: dict[str, float] = {"pilothouse": float("inf"), "opentelemetry-sdk": float("inf")}
    handled: dict[str, Any] = {}
    for _ in range(args.rounds):
        runs: list[tuple[str, tuple[float, int]]] = [
            ("pilothouse", ours(args.spans, args.wire)),
            ("opentelemetry-sdk", theirs(args.spans)),
        ]
        for name, (elapsed, count) in runs:
            best[name] = min(best[name], elapsed)
            handled[name] = count
    per_span = {name: best[name] / args.spans * 1e6 for name in best}
    print(f"spans per round: {args.spans}, rounds: {args.rounds}, best round kept, wire={args.wire}")
    for name, us in per_span.items():
        print(f"  {name:<18} {us:7.2f} us per span   (handled by the background side: {handled[name]})")
    ratio = per_span["pilothouse"] / per_span["opentelemetry-sdk"]
    verdict = "meets" if ratio <= 0.25 else "misses"
    print(f"ratio pilothouse / opentelemetry-sdk: {ratio:.3f} ({verdict} the target of at most 0.25)")


if __name__ == "__main__":
    main()
