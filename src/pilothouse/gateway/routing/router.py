"""The route stage: which deployment serves a chat call, and what happens when it fails.

`Router.pick` chooses the first deployment while the request is prepared; `Router.chat` and
`Router.open_stream` make the call. The common case (the chosen deployment's circuit is closed and the call
succeeds) costs two clock reads and a latency update; everything else (retries with backoff, other
deployments, fallback models, the `route` span) happens in `Attempts` only once something failed.

A stream can be retried only until its first chunk arrived: `open_stream` returns once it has one (that
chunk is yielded again first), and a failure after that ends the stream with an SSE error event.

Every call runs under its deadline (routing/deadline.py): all attempts, backoffs and fallbacks, and a
stream's chunks to its end. A cancelled call (the deadline passed, or the server cancelled the request
because its client left) is recorded on the attempt it cut, with its usage unknown.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.errors import ApiError
from pilothouse.gateway.prepared import Prepared
from pilothouse.gateway.pricing import PriceBook, cost
from pilothouse.gateway.providers.base import ChatResult, Chunk, ProviderError, Usage
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.routing import spans
from pilothouse.gateway.routing.attempts import Attempts
from pilothouse.gateway.routing.deadline import (
    Deadline,
    DeadlineExceeded,
    bounded,
    deadline_error,
    mark_cut,
    mark_not_sent,
)
from pilothouse.gateway.routing.health import DeploymentHealth, HealthBook
from pilothouse.gateway.routing.selection import choose

T = TypeVar("T")
StreamStart = tuple[float, AsyncIterator[Chunk]]


def deployment_labels(entry: ModelEntry) -> list[str]:
    """`name` when set, else `provider/model`, with `#index` when that repeats within the model."""
    bases = [f"{d.provider}/{d.model}" for d in entry.deployments]
    return [
        d.name or (base if bases.count(base) == 1 else f"{base}#{i}")
        for i, (d, base) in enumerate(zip(entry.deployments, bases, strict=True))
    ]


async def _prepend(first: Chunk, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    yield first
    async for chunk in rest:
        yield chunk


async def _empty() -> AsyncIterator[Chunk]:
    return
    yield  # pragma: no cover - makes this an async generator


class Router:
    """Deployment choice, retries, fallbacks and circuit breaking for chat calls (docs/cost-control.md)."""

    def __init__(
        self,
        settings: Settings,
        pool: ProviderPool,
        prices: PriceBook,
        catalog: dict[str, ModelEntry],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = settings.routing
        self.pool = pool
        self.prices = prices
        self.catalog = catalog
        self.clock = clock
        self.sleep = sleep
        self.rng = rng if rng is not None else random.Random()
        self.health = HealthBook(self.policy, clock)
        for entry in catalog.values():
            for deployment, label in zip(entry.deployments, deployment_labels(entry), strict=True):
                self.health.register(id(deployment), label)

    # -- choosing ---------------------------------------------------------------------------------
    def health_of(self, deployment: Deployment) -> DeploymentHealth:
        health = self.health.get(id(deployment))
        if health is None:  # a deployment outside the catalog (built by hand)
            health = self.health.register(
                id(deployment), deployment.name or f"{deployment.provider}/{deployment.model}"
            )
        return health

    def choose(self, candidates: Sequence[Deployment], *, stream: bool) -> Deployment:
        index = choose(
            [d.weight for d in candidates],
            [self.health_of(d) for d in candidates],
            stream=stream,
            sensitivity=self.policy.latency_sensitivity,
            rng=self.rng,
        )
        return candidates[index]

    def pick(self, entry: ModelEntry, *, stream: bool = False) -> Deployment:
        """The deployment a request starts on: among those ready now (all, if none is)."""
        deployments = entry.deployments
        if len(deployments) == 1:
            return deployments[0]
        now = self.clock()
        healths = [self.health_of(d) for d in deployments]
        ready = [i for i, h in enumerate(healths) if self.health.ready_in(h, now) == 0.0] or range(len(deployments))
        index = choose(
            [deployments[i].weight for i in ready],
            [healths[i] for i in ready],
            stream=stream,
            sensitivity=self.policy.latency_sensitivity,
            rng=self.rng,
        )
        return deployments[ready[index]]

    def capable(self, deployment: Deployment, *, tools: bool, stream: bool) -> bool:
        provider = self.pool.get(deployment)
        return (provider.supports_tools or not tools) and (provider.supports_streaming or not stream)

    def fit_context(
        self, entry: ModelEntry, needed: int, *, tools: bool, stream: bool
    ) -> tuple[ModelEntry, Deployment] | None:
        """A larger-context fallback for a request of `needed` tokens that overflows `entry`: the first model
        of `context_window_fallbacks` (default `fallbacks`) with a capable deployment whose window fits
        (or is unknown), or None."""
        names = entry.context_window_fallbacks if entry.context_window_fallbacks is not None else entry.fallbacks
        for name in names:
            candidate = self.catalog.get(name)
            if candidate is None:
                continue
            fitting = []
            for deployment in candidate.deployments:
                window = self.prices.context_window_for(deployment)
                if (window is None or window >= needed) and self.capable(deployment, tools=tools, stream=stream):
                    fitting.append(deployment)
            if fitting:
                return candidate, self.choose(fitting, stream=stream)
        return None

    def chain(self, requested: ModelEntry, current: ModelEntry) -> list[ModelEntry]:
        """The models a request may use, in order, starting with the one it was prepared for: the requested
        model and its fallbacks, or, when preparing moved to a larger-context fallback, that one and those
        after it in the list it came from."""
        if current is requested:
            names: Iterable[str] = requested.fallbacks
        else:
            listed = requested.context_window_fallbacks
            listed = listed if listed is not None else requested.fallbacks
            names = listed[listed.index(current.name) + 1 :] if current.name in listed else ()
        return [current, *(e for n in names if (e := self.catalog.get(n)) is not None and e is not current)]

    # -- calling ----------------------------------------------------------------------------------
    def deadline(self, prep: Prepared) -> Deadline:
        """The request's overall deadline, starting now: its model's `call_deadline_s`, else the policy's."""
        return Deadline(prep.entry.call_deadline_s or self.policy.call_deadline_s, self.clock())

    async def chat(self, prep: Prepared) -> ChatResult:
        """The whole answer from the first deployment that gives one within the deadline; raises ApiError
        when none does (504 `deadline_exceeded` when the deadline passed)."""
        return await self._route(prep, _chat_call, self.deadline(prep), stream=False)

    async def open_stream(self, prep: Prepared) -> StreamStart:
        """`(started, chunks)` from the first deployment that sends a first chunk (`started`: perf_counter
        when that attempt began); raises ApiError when none does. The chunks end at the deadline with
        DeadlineExceeded."""
        deadline = self.deadline(prep)
        started, chunks = await self._route(prep, _open_stream, deadline, stream=True)
        return started, bounded(chunks, deadline, prep.span)

    def end_stream(self, prep: Prepared, exc: ProviderError | None) -> None:
        """The stream ended: a failure after the first chunk still counts against the deployment (a stream
        that merely outlived its deadline does not), and the route span (if there is one) ends with it."""
        if exc is not None and not isinstance(exc, DeadlineExceeded):
            self.health.failure(self.health_of(prep.deployment), exc.kind, exc.retry_after, self.clock())
        route = prep.route
        if route is not None:
            if exc is None:
                route.finish()
            else:
                route.finish(status="error", error=prep.span.error)

    async def _route(
        self, prep: Prepared, call: Callable[[Prepared], Awaitable[T]], deadline: Deadline, *, stream: bool
    ) -> T:
        try:
            async with asyncio.timeout_at(deadline.loop_at) as timer:
                return await self._attempts(prep, call, deadline, stream=stream)
        except TimeoutError:
            if not timer.expired():
                raise
            raise self._expired(prep, deadline) from None
        except asyncio.CancelledError:  # the request was cancelled (its client left): record the cut call
            self._cut(prep, deadline, "cancelled")
            raise

    def _cut(self, prep: Prepared, deadline: Deadline, why: str) -> bool:
        """Mark the attempt the cancellation hit; True when its call was in flight."""
        if deadline.in_flight is prep.span:
            mark_cut(prep.span, why)
            self._charge_worst_case(prep)
            return True
        mark_not_sent(prep.span, why)
        return False

    def _charge_worst_case(self, prep: Prepared) -> None:
        """A call cut mid-way reported no usage, and the upstream may have billed up to its worst case: meter it
        there (input: the exact count or the bound; output: max_tokens, else the deployment's output cap or the
        room its context window leaves), so the trace, which is the spend ledger, and the budget settle on the
        most it can have cost, never on zero. The span stays marked usage-unknown and estimated."""
        span, deployment = prep.span, prep.deployment
        input_tokens = prep.unreported_input_tokens()
        output_tokens = prep.body.max_tokens or self.prices.max_output_tokens_for(deployment)
        if output_tokens is None:
            window = self.prices.context_window_for(deployment)
            output_tokens = None if window is None else max(window - input_tokens, 0)
        price = self.prices.price_for(deployment)
        if output_tokens is None or price is None:
            return  # no bound or no price: the cost stays unknown, as the call's reservation was
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, estimated=True)
        span.input_tokens, span.output_tokens, span.usage_estimated = input_tokens, output_tokens, True
        span.cost_usd = cost(price, usage)
        span.attributes["pilothouse.usage.charged_at"] = "worst_case"

    def _expired(self, prep: Prepared, deadline: Deadline) -> ApiError:
        """The deadline passed: the attempt in flight was cancelled (it counts as a timeout for its deployment).
        A lone attempt's span stays open for the server to record the error on; after several attempts it
        ends here and the route span carries the error."""
        error = deadline_error(deadline)
        if self._cut(prep, deadline, "deadline_exceeded"):
            self.health.failure(self.health_of(prep.deployment), "timeout", None, self.clock())
        route = prep.route
        if route is not None:
            spans.end_failed(prep.span, error)
            route.attributes["pilothouse.route.attempts"] = prep.span.attributes.get("pilothouse.attempt")
            route.attributes["pilothouse.route.stopped_by"] = "deadline"
        return error

    async def _attempts(
        self, prep: Prepared, call: Callable[[Prepared], Awaitable[T]], deadline: Deadline, *, stream: bool
    ) -> T:
        health = self.health_of(prep.deployment)
        start = self.clock()
        if health.open_until == 0.0 and health.not_before <= start:
            attrs = prep.span.attributes
            attrs["pilothouse.attempt"] = 1
            attrs["pilothouse.deployment"] = health.label
            if prep.entry.name != prep.body.model:  # preparing moved to a larger-context fallback
                attrs["pilothouse.fallback_from"] = prep.body.model
            deadline.in_flight = prep.span
            try:
                result = await call(prep)
            except ProviderError as exc:
                deadline.in_flight = None
                attempts = Attempts(self, prep, stream=stream, first_made=True)
                attempts.failed(exc)
                return await self._retry(attempts, call, deadline)
            deadline.in_flight = None
            self.health.success(health, (self.clock() - start) * 1000.0, stream=stream)
            return result
        return await self._retry(Attempts(self, prep, stream=stream, first_made=False), call, deadline)

    async def _retry(self, attempts: Attempts, call: Callable[[Prepared], Awaitable[T]], deadline: Deadline) -> T:
        prep = attempts.prep
        while True:
            step = attempts.next_step()
            if step is None:
                raise attempts.final_error()
            if not deadline.leaves_time(self.clock(), step.wait_s):  # no attempt or backoff past the deadline
                raise attempts.out_of_time(deadline.describe())
            span = attempts.begin(step)
            if step.wait_s > 0:
                await self.sleep(step.wait_s)
                span.started_at = time.time()
            health = self.health_of(step.deployment)
            start = self.clock()
            self.health.acquire(health, start)
            deadline.in_flight = span
            try:
                result = await call(prep)
            except ProviderError as exc:
                deadline.in_flight = None
                attempts.failed(exc)
                continue
            except BaseException:
                self.health.release(health)
                raise
            deadline.in_flight = None
            self.health.success(health, (self.clock() - start) * 1000.0, stream=attempts.stream)
            attempts.succeeded(end_route=not attempts.stream)
            return result


def _chat_call(prep: Prepared) -> Awaitable[ChatResult]:
    return prep.provider.chat(prep.request)


async def _open_stream(prep: Prepared) -> StreamStart:
    started = time.perf_counter()
    chunks = prep.provider.chat_stream(prep.request)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        return started, _empty()
    return started, _prepend(first, chunks)
