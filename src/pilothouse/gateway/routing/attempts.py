"""One request's way through its deployments and fallbacks, after its first attempt could not simply succeed.

The chain is the requested model followed by its `fallbacks`, in order. Per model the router calls each
usable deployment once and may repeat calls `routing.retries` times; `routing.max_attempts` caps the calls
over the whole chain:

* the next call goes to a deployment of the current model that was not called yet in this request and is
  ready now (weighted, latency-aware choice); when every ready one was called already, to one of those
  again after an exponential backoff with full jitter; a deployment that asked to wait (429 Retry-After)
  is waited for when the wait is at most `max_retry_after_s` (and at least the backoff), else skipped;
  a deployment whose circuit is open is skipped;
* when the current model has no call left, the next model of the chain takes over (no wait).

By the failure's kind: `rate_limit`, `timeout`, `unavailable`, `upstream` (5xx, broken bodies) are retried
as above; `auth` is never sent to the same deployment again but other deployments and fallbacks are tried
(it is that deployment's key that is wrong); `bad_request` ends routing at once (the request itself is
refused, another model would refuse it too); `context_window` moves to the models of
`context_window_fallbacks` (default: the rest of `fallbacks`) whose context window is larger than the one
that overflowed and fits the request (unknown windows are tried).

The error a caller gets says whether a client retry is wanted (`x-should-retry`, which the official OpenAI
and Anthropic SDKs obey): `false` once the gateway made more than one call (its own retries and failovers
were the retries; a client retrying on top multiplies upstream calls) or where another try cannot help;
`true` only where a single call failed in a way a later try may not.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pilothouse.config import Deployment, ModelEntry
from pilothouse.errors import ApiError, UpstreamError
from pilothouse.gateway.prepared import Prepared
from pilothouse.gateway.providers.base import ChatRequest, ProviderError
from pilothouse.gateway.routing import spans
from pilothouse.gateway.routing.deadline import SHOULD_RETRY
from pilothouse.gateway.routing.selection import backoff_delay
from pilothouse.gateway.routing.upstream_errors import provider_error_to_api
from pilothouse.gateway.tokens import estimate_messages_tokens
from pilothouse.tracing.model import SpanRecord, TraceRecord

if TYPE_CHECKING:
    from pilothouse.gateway.routing.router import Router


# Failures another call may get past (the same kinds routing retries).
RETRYABLE_KINDS = frozenset({"rate_limit", "timeout", "unavailable", "upstream"})


def to_api(exc: ProviderError, deployment: Deployment) -> ApiError:
    return provider_error_to_api(exc, f"{deployment.provider}/{deployment.model}")


@dataclass(frozen=True, slots=True)
class Step:
    entry: ModelEntry
    deployment: Deployment
    wait_s: float


class Attempts:
    """The state of one request's routing: which model and deployments it used, and what failed."""

    def __init__(self, router: Router, prep: Prepared, *, stream: bool, first_made: bool) -> None:
        self.router = router
        self.prep = prep
        self.stream = stream
        self.trace: TraceRecord = prep.trace if prep.trace is not None else TraceRecord(prep.span.project_id, "chat")
        self.requested = router.catalog.get(prep.body.model, prep.entry)
        self.chain = router.chain(self.requested, prep.entry)
        self.visited = {prep.entry.name}
        self.pos = 0
        self.calls = 0  # over the whole chain
        self.retries = 0  # repeated calls within chain[pos] (the backoff exponent)
        self.tried: dict[int, int] = {}
        self.excluded: set[int] = set()
        self.stopped = False
        self.window_floor = 0  # after an upstream overflow: only larger (or unknown) windows
        self._needed: int | None = None
        self.failures: list[tuple[str, ProviderError, Deployment]] = []
        self.failed_at = 0.0
        self.pending = False  # prep.span holds a failed attempt not yet ended
        self.used = first_made  # prep.span holds an attempt already
        if first_made:
            self._count(prep.deployment)

    # -- bookkeeping ------------------------------------------------------------------------------
    def _count(self, deployment: Deployment) -> None:
        self.calls += 1
        key = id(deployment)
        self.tried[key] = self.tried.get(key, 0) + 1

    def needed(self) -> int:
        """Tokens the request needs: its input plus max_tokens (computed once, only when a window is known)."""
        if self._needed is None:
            body = self.prep.body
            n_in = self.prep.input_tokens
            self._needed = (n_in if n_in is not None else estimate_messages_tokens(body.messages)) + (
                body.max_tokens or 0
            )
        return self._needed

    def usable(self, deployment: Deployment) -> bool:
        if id(deployment) in self.excluded:
            return False
        window = self.router.prices.context_window_for(deployment)
        if window is not None and (window <= self.window_floor or window < self.needed()):
            return False
        return self.router.capable(deployment, tools=bool(self.prep.body.params.get("tools")), stream=self.stream)

    def failed(self, exc: ProviderError) -> None:
        """The attempt in prep.span failed: update health, decide what this failure rules out."""
        deployment = self.prep.deployment
        router = self.router
        health = router.health_of(deployment)
        router.health.failure(health, exc.kind, exc.retry_after, router.clock())
        self.failed_at = time.time()
        self.pending = True
        self.failures.append((health.label, exc, deployment))
        spans.record_failure(self.prep.span, exc, to_api(exc, deployment))
        if exc.kind == "bad_request":
            self.stopped = True
        elif exc.kind == "auth":
            self.excluded.add(id(deployment))
        elif exc.kind == "context_window":
            self._overflowed(deployment)

    def _overflowed(self, deployment: Deployment) -> None:
        window = self.router.prices.context_window_for(deployment)
        if window is not None:
            self.window_floor = max(self.window_floor, window)
        if self.requested.context_window_fallbacks is not None:
            names = self.requested.context_window_fallbacks
            self.chain = [e for n in names if n not in self.visited and (e := self.router.catalog.get(n))]
        else:
            self.chain = self.chain[self.pos + 1 :]
        self.pos = 0
        self.retries = 0

    def _advance(self) -> None:
        self.pos += 1
        self.retries = 0

    # -- the next attempt -------------------------------------------------------------------------
    def next_step(self) -> Step | None:
        """The next call to make, or None when routing must give up."""
        if self.stopped:
            return None
        router = self.router
        policy = router.policy
        while self.pos < len(self.chain) and self.calls < policy.max_attempts:
            entry = self.chain[self.pos]
            now = router.clock()
            fresh: list[Deployment] = []
            again: list[Deployment] = []
            waiting: list[tuple[float, Deployment]] = []
            for deployment in entry.deployments:
                if not self.usable(deployment):
                    continue
                delay = router.health.ready_in(router.health_of(deployment), now)
                if delay == 0.0:
                    (again if id(deployment) in self.tried else fresh).append(deployment)
                elif delay <= policy.max_retry_after_s:
                    waiting.append((delay, deployment))
            if fresh:
                return Step(entry, router.choose(fresh, stream=self.stream), 0.0)
            can_repeat = self.retries < policy.retries
            waits = [(w, d) for w, d in waiting if can_repeat or id(d) not in self.tried]
            if again and can_repeat:
                deployment, floor = router.choose(again, stream=self.stream), 0.0
            elif waits:
                floor, deployment = min(waits, key=lambda item: item[0])
            else:
                self._advance()
                continue
            wait = floor
            if id(deployment) in self.tried:
                base, cap = policy.backoff_base_s, policy.backoff_max_s
                wait = max(floor, backoff_delay(self.retries, base=base, cap=cap, rng=router.rng))
                self.retries += 1
            return Step(entry, deployment, wait)
            self._advance()
        return None

    def begin(self, step: Step) -> SpanRecord:
        """Make `step` the current attempt: end the failed one, open the route span if this is the second
        attempt, and point prep (entry, deployment, provider, request, span) at the new deployment."""
        prep = self.prep
        entry, deployment = step.entry, step.deployment
        if not self.used:
            span = prep.span
        else:
            previous = prep.span
            if prep.route is None:
                prep.route = spans.open_route(self.trace, previous, self.requested.name)
            self._end_pending()
            span = spans.next_attempt(self.trace, previous, prep.route)
        self.used = True
        self.visited.add(entry.name)
        self._count(deployment)
        spans.label_attempt(
            span, entry, deployment, self.router.health_of(deployment).label, self.calls, self.requested.name
        )
        if deployment is not prep.deployment:
            prep.deployment = deployment
            prep.provider = self.router.pool.get(deployment)
            if deployment.model != prep.request.model:
                prep.request = ChatRequest(deployment.model, prep.request.messages, prep.request.params)
        prep.entry = entry
        prep.span = span
        if step.wait_s > 0:
            span.attributes["pilothouse.backoff_s"] = round(step.wait_s, 3)
        return span

    def _end_pending(self) -> None:
        if self.pending:
            spans.end_span(self.prep.span, self.failed_at, ok=False)
            self.pending = False

    def succeeded(self, *, end_route: bool) -> None:
        route = self.prep.route
        if route is None:
            return
        route.attributes["pilothouse.route.attempts"] = self.calls
        route.attributes["pilothouse.deployment"] = self.prep.span.attributes.get("pilothouse.deployment")
        if end_route:
            self.prep.span.finish()
            route.finish()

    # -- giving up --------------------------------------------------------------------------------
    def final_error(self) -> ApiError:
        """The error the caller sees. The last failed attempt's span is ended when a route span exists
        (which is left open for the server to record this error on); a lone attempt stays open itself."""
        if self.prep.route is not None:
            self._end_pending()
            self.prep.route.attributes["pilothouse.route.attempts"] = self.calls
        if not self.failures:
            return self._nothing_ready()
        _, exc, deployment = self.failures[-1]
        error = to_api(exc, deployment)
        if len(self.failures) > 1:
            earlier = ", ".join(f"{lbl}: {e.kind}" for lbl, e, _ in self.failures[:-1])
            error.message = f"{error.message} (attempt {len(self.failures)}; earlier attempts: {earlier})"
            error.args = (error.message,)
        retry_helps = self.calls <= 1 and exc.kind in RETRYABLE_KINDS
        error.headers[SHOULD_RETRY] = "true" if retry_helps else "false"
        return error

    def out_of_time(self, deadline: str) -> ApiError:
        """Give up because the next attempt (or its backoff) would not start before `deadline` (described)."""
        error = self.final_error()
        error.message = f"{error.message}; no time was left for another attempt within {deadline}"
        error.args = (error.message,)
        if self.prep.route is not None:
            self.prep.route.attributes["pilothouse.route.stopped_by"] = "deadline"
        return error

    def _nothing_ready(self) -> ApiError:
        router = self.router
        now = router.clock()
        names = [self.requested.name, *self.requested.fallbacks]
        healths = [router.health_of(d) for n in names if (e := router.catalog.get(n)) for d in e.deployments]
        soonest = min((max(h.open_until - now, h.not_before - now, 0.0) for h in healths), default=0.0)
        retry = max(1, math.ceil(soonest))
        which = f"'{self.requested.name}'" + (" and its fallbacks" if self.requested.fallbacks else "")
        return UpstreamError(
            f"no deployment of {which} can take the request now: their circuits are open after repeated "
            f"failures or they asked to wait (Retry-After). Try again in about {retry}s.",
            status=503,
            code="upstream_unavailable",
            headers={"retry-after": str(retry), SHOULD_RETRY: "true"},  # no call made: one may work after the wait
        )
