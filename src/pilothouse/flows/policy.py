"""Per-step failure policy: retries with backoff, a timeout, a fallback step and a compensation step."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Retry:
    """Run a failing step up to `attempts` times in all, waiting `backoff_s * multiplier**n` (at most
    `max_backoff_s`) between attempts, for errors that are instances of `on` only."""

    attempts: int = 3
    backoff_s: float = 0.5
    multiplier: float = 2.0
    max_backoff_s: float = 30.0
    on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts must be at least 1")
        if self.backoff_s < 0 or self.max_backoff_s < 0 or self.multiplier < 1:
            raise ValueError("Retry needs backoff_s >= 0, max_backoff_s >= 0 and multiplier >= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.max_backoff_s, self.backoff_s * self.multiplier ** (attempt - 1)))

    def retries(self, exc: BaseException) -> bool:
        return isinstance(exc, self.on)


NO_RETRY = Retry(attempts=1, backoff_s=0.0)


@dataclass(frozen=True, slots=True)
class StepOptions:
    """How the engine runs one step.

    retry: the retry policy (default: one attempt). timeout_s: each attempt's limit. fallback: a step run in
    this one's place when it still fails after its retries (its updates apply; the graph goes on from here).
    compensate: a step run, in reverse order of completion, when the run fails after this one succeeded (to undo
    its side effects).
    """

    retry: Retry = field(default=NO_RETRY)
    timeout_s: float | None = None
    fallback: str | None = None
    compensate: str | None = None

    def __post_init__(self) -> None:
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
