"""What goes wrong in a flow, as exceptions the engine, the steps and the faces share.

`FlowDefinitionError` is raised while a flow is built (it names the step at fault). The others end a step; the
engine decides from the class (`NON_RETRYABLE`) or the error's own `retryable = False` whether a retry may
help, and writes the terminal error of a failed run as `{"step", "cause", "message", "state"}`.
"""

from __future__ import annotations


class FlowError(Exception):
    """Base class of the flow errors."""


class FlowDefinitionError(FlowError):
    """The graph is not a valid flow: unknown or duplicate step names, unreachable steps, steps with no way
    out, cycles without a bound. `step` names the step at fault when there is one."""

    def __init__(self, message: str, *, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step


class BudgetExceeded(FlowError):
    """A run's budget (cost, tokens, model calls, steps or wall time) is spent."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class ApprovalRejected(FlowError):
    """A person rejected the run at an approval step."""


class LoopBoundExceeded(FlowError):
    """A step in a cycle was visited more often than its `loop_bound`."""


class FlowChanged(FlowError):
    """A run is resumed with a graph whose structure differs from the one it started with."""


class RunCancelled(FlowError):
    """The run's kill switch was pulled (`cancel_requested`)."""


class StepTimeout(FlowError, TimeoutError):
    """A step ran past its `timeout_s` (retried like any TimeoutError when its retry policy allows it)."""


NON_RETRYABLE: tuple[type[BaseException], ...] = (
    BudgetExceeded,
    ApprovalRejected,
    LoopBoundExceeded,
    FlowChanged,
    RunCancelled,
    FlowDefinitionError,
)
"""Errors no retry can fix: the step fails at once whatever its retry policy says."""


class FlowInputError(FlowError, ValueError):
    """A run's input (or a replay's state) does not fit the flow's state model."""


class MapItemFailed(FlowError):
    """One item of a map failed for good (after its retries); the map step fails with it. A retry of the map
    step may help only when one may help the item (`retryable` follows the cause's)."""

    def __init__(self, message: str, *, item: int, cause: BaseException) -> None:
        super().__init__(message)
        self.item = item
        self.cause = cause
        self.retryable = getattr(cause, "retryable", True) is not False
