"""Engine tests run on the in-memory store (the SQL stores run the same protocol in the conformance suite and
the durability tests); spans are collected in a list."""

from __future__ import annotations

import pytest

from pilothouse.flows import Engine, MemoryCheckpointStore
from pilothouse.tracing.model import TraceRecord


class Spans:
    """A span writer that keeps what it is given."""

    def __init__(self) -> None:
        self.traces: list[TraceRecord] = []

    async def write(self, trace: TraceRecord) -> None:
        self.traces.append(trace)

    def names(self) -> list[str]:
        return [s.name for t in self.traces for s in t.spans]


async def no_sleep(seconds: float) -> None:
    SLEPT.append(seconds)


SLEPT: list[float] = []


@pytest.fixture
def mem() -> MemoryCheckpointStore:
    return MemoryCheckpointStore()


@pytest.fixture
def spans() -> Spans:
    return Spans()


@pytest.fixture
def engine(mem: MemoryCheckpointStore, spans: Spans) -> Engine:
    SLEPT.clear()
    return Engine(mem, worker="w1", tracer=spans, sleep=no_sleep)
