"""Running a scenario suite against one prompt version: each case through an executor, then its assertions.

An executor runs one case (renders the prompt version with the case's variables, calls the model) and
returns an `Execution`; it raises `ExecutionFailed` when the call itself fails, which fails the case with
that reason. Two executors exist: over HTTP through the gateway (`http_executor`, used by the CLI) and in
the server process (`gateway_executor`, used by gated promotion).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from pilothouse.prompts.testing.assertions import AssertionOutcome, Execution
from pilothouse.prompts.testing.scenarios import Case


class ExecutionFailed(Exception):
    """The call for a case failed (an API error, a refused request); the case fails with this message."""

    def __init__(self, message: str, *, trace_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.trace_id = trace_id


class Executor(Protocol):
    async def __call__(self, case: Case) -> Execution:
        """Run one case and return what the model produced; raise ExecutionFailed if the call fails."""
        ...


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    outcomes: list[AssertionOutcome]
    execution: Execution | None
    error: str | None = None
    trace_id: str | None = None
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outcomes)

    @property
    def failures(self) -> list[AssertionOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def reason(self) -> str:
        """Why the case failed, in one line ('' when it passed)."""
        if self.error is not None:
            return f"error: {self.error}"
        return "; ".join(f"{o.assertion}: {o.detail}" for o in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "error": self.error,
            "trace_id": self.trace_id,
            "duration_s": round(self.duration_s, 3),
            "assertions": [o.to_dict() for o in self.outcomes],
            "execution": None if self.execution is None else self.execution.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """The results of a suite against one target (`NAME@VERSION`)."""

    target: str
    version: int | None
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return self.total - self.passed

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def failing(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed]

    def mean_latency_ms(self) -> float | None:
        values = [c.execution.latency_ms for c in self.cases if c.execution and c.execution.latency_ms is not None]
        return round(sum(values) / len(values), 3) if values else None

    def total_cost_usd(self) -> Decimal | None:
        """The summed cost; None when any executed case has an unknown cost."""
        executions = [c.execution for c in self.cases if c.execution is not None]
        if any(e.cost_usd is None for e in executions):
            return None
        return sum((e.cost_usd for e in executions if e.cost_usd is not None), Decimal(0))

    def to_dict(self) -> dict[str, Any]:
        cost = self.total_cost_usd()
        return {
            "target": self.target,
            "version": self.version,
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "mean_latency_ms": self.mean_latency_ms(),
            "total_cost_usd": None if cost is None else format(cost, "f"),
            "cases": [c.to_dict() for c in self.cases],
        }


Progress = Callable[[CaseResult], None]


async def run_case(case: Case, executor: Executor) -> CaseResult:
    started = time.perf_counter()
    try:
        execution = await executor(case)
    except ExecutionFailed as exc:
        return CaseResult(case.name, [], None, exc.message, exc.trace_id, time.perf_counter() - started)
    outcomes = [a.check(execution) for a in case.assertions]
    return CaseResult(case.name, outcomes, execution, None, execution.trace_id, time.perf_counter() - started)


async def run_suite(
    cases: Sequence[Case],
    executor: Executor,
    *,
    target: str = "",
    version: int | None = None,
    progress: Progress | None = None,
) -> SuiteResult:
    """Run the cases one after another (so latency assertions measure one call, not contention), calling
    `progress` after each. `version` defaults to the version the executions report."""
    results: list[CaseResult] = []
    for case in cases:
        result = await run_case(case, executor)
        results.append(result)
        if progress is not None:
            progress(result)
    if version is None:
        seen = {r.execution.prompt_version for r in results if r.execution and r.execution.prompt_version is not None}
        version = seen.pop() if len(seen) == 1 else None
    return SuiteResult(target, version, results)
