"""`@observe` and `span(...)`: nested spans around the application's own code.

A span opened with no current span starts a trace (named after it); one opened inside another is its child,
across `await`, `asyncio` tasks and (with `context.carry`) threads. An exception ends the span with status
`error` and goes on to the caller unchanged. Generators and async generators get one span for the whole
iteration: the code between two items runs under it, the consumer's code does not.

    @observe(kind="retrieval")
    async def search(q: str) -> list[str]: ...

    with span(kind="tool", name="weather") as s:
        s.update(output=lookup())
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from pilothouse.sdk.tracing.context import current
from pilothouse.sdk.tracing.spans import SPAN_KINDS, Span, TraceState, new_trace_id
from pilothouse.sdk.tracing.traceparent import TraceParent, parse

log = logging.getLogger("pilothouse.sdk")

F = TypeVar("F", bound=Callable[..., Any])
MAX_GENERATOR_ITEMS = 100  # items of a generator kept as its output


def start_span(kind: str, name: str, traceparent: TraceParent | str | None = None) -> Span:
    """A new span under the current one (or starting a trace); it is not made current (see `span`)."""
    parent = current.get()
    if parent is not None and traceparent is None:
        return Span(parent.trace, kind, name, parent.id, root=False)
    remote = parse(traceparent) if isinstance(traceparent, str) else traceparent
    if remote is not None:  # continue a trace another service started
        return Span(TraceState(remote.trace_id, name), kind, name, remote.span_id, root=True)
    return Span(TraceState(new_trace_id(), name), kind, name, None, root=True)


class span:
    """A span around a block: `with span(kind="retrieval", name="search") as s: ...`.

    `traceparent` (a W3C header value) continues a trace started elsewhere; the block's span is then the
    child of that remote span."""

    __slots__ = ("_span", "_token")

    def __init__(self, name: str, kind: str = "step", *, traceparent: TraceParent | str | None = None) -> None:
        if kind not in SPAN_KINDS:
            raise ValueError(f"unknown span kind {kind!r}; one of {', '.join(sorted(SPAN_KINDS))}")
        self._span = start_span(kind, name, traceparent)
        self._token: Any = None

    def __enter__(self) -> Span:
        self._token = current.set(self._span)
        return self._span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        current.reset(self._token)
        if exc is not None:
            self._span.fail(exc)
        self._span.end()


def update_trace(
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Set the current trace's session, user, tags (added) and metadata (merged). Outside any span it only logs
    a warning: tracing never raises into the application."""
    active = current.get()
    if active is None:
        log.warning("pilothouse.update_trace() called outside any span; nothing recorded")
        return
    trace = active.trace
    if session_id is not None:
        trace.session_id = str(session_id)[:200]
    if user_id is not None:
        trace.user_id = str(user_id)[:200]
    if tags:
        trace.tags = list(dict.fromkeys([*(trace.tags or []), *map(str, tags)]))
    if metadata:
        trace.metadata = {**(trace.metadata or {}), **metadata}


@overload
def observe(fn: F, /) -> F: ...


@overload
def observe(
    fn: None = None, /, *, name: str | None = None, kind: str = "step", capture: bool = True
) -> Callable[[F], F]: ...


def observe(
    fn: F | None = None, /, *, name: str | None = None, kind: str = "step", capture: bool = True
) -> F | Callable[[F], F]:
    """Trace each call of a function (sync, async, generator or async generator) as a span.

    `name` defaults to the function's qualified name, `kind` to "step". With `capture` the arguments (but
    `self`/`cls`) and the return value (a generator's items, up to 100) are the span's input and output;
    whether content is sent at all is `configure(capture=...)`."""
    if kind not in SPAN_KINDS:
        raise ValueError(f"unknown span kind {kind!r}; one of {', '.join(sorted(SPAN_KINDS))}")

    def decorate(func: F) -> F:
        return cast(F, _wrap(func, name or func.__qualname__, kind, capture))

    return decorate(fn) if fn is not None else decorate


def _wrap(func: Callable[..., Any], name: str, kind: str, capture: bool) -> Callable[..., Any]:
    params = list(inspect.signature(func).parameters)
    skip = 1 if params and params[0] in ("self", "cls") else 0

    def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not capture:
            return None
        args = args[skip:]
        if not kwargs:
            return list(args) if args else None
        return {"args": list(args), "kwargs": kwargs} if args else kwargs

    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator(func, name, kind, capture, arguments)
    if inspect.isgeneratorfunction(func):
        return _wrap_generator(func, name, kind, capture, arguments)
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            s = start_span(kind, name)
            s.input = arguments(args, kwargs)
            token = current.set(s)
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                s.fail(exc)
                s.end()
                raise
            finally:
                current.reset(token)
            if capture:
                s.output = result
            s.end()
            return result

        return run_async

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        s = start_span(kind, name)
        s.input = arguments(args, kwargs)
        token = current.set(s)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            s.fail(exc)
            s.end()
            raise
        finally:
            current.reset(token)
        if capture:
            s.output = result
        s.end()
        return result

    return run


def _wrap_generator(
    func: Callable[..., Generator[Any, Any, Any]],
    name: str,
    kind: str,
    capture: bool,
    arguments: Callable[[tuple[Any, ...], dict[str, Any]], Any],
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        s = start_span(kind, name)
        s.input = arguments(args, kwargs)
        items: list[Any] = []
        count = 0
        token = current.set(s)
        try:
            inner = func(*args, **kwargs)
        finally:
            current.reset(token)
        sent: Any = None
        try:
            while True:
                token = current.set(s)
                try:
                    item = inner.send(sent)
                except StopIteration as stop:
                    _end_iteration(s, items, count, capture, stop.value)
                    return stop.value
                finally:
                    current.reset(token)
                count += 1
                if capture and count <= MAX_GENERATOR_ITEMS:
                    items.append(item)
                sent = yield item
        except GeneratorExit:
            inner.close()
            s.set_attribute("pilothouse.generator.closed_early", True)
            _end_iteration(s, items, count, capture, None)
            raise
        except BaseException as exc:
            s.fail(exc)
            _end_iteration(s, items, count, capture, None)
            raise

    return run


def _wrap_async_generator(
    func: Callable[..., AsyncGenerator[Any, Any]],
    name: str,
    kind: str,
    capture: bool,
    arguments: Callable[[tuple[Any, ...], dict[str, Any]], Any],
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(func)
    async def run(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        s = start_span(kind, name)
        s.input = arguments(args, kwargs)
        items: list[Any] = []
        count = 0
        inner = func(*args, **kwargs)
        sent: Any = None
        try:
            while True:
                token = current.set(s)
                try:
                    item = await inner.asend(sent)
                except StopAsyncIteration:
                    _end_iteration(s, items, count, capture, None)
                    return
                finally:
                    current.reset(token)
                count += 1
                if capture and count <= MAX_GENERATOR_ITEMS:
                    items.append(item)
                sent = yield item
        except GeneratorExit:
            await inner.aclose()
            s.set_attribute("pilothouse.generator.closed_early", True)
            _end_iteration(s, items, count, capture, None)
            raise
        except BaseException as exc:
            s.fail(exc)
            _end_iteration(s, items, count, capture, None)
            raise

    return run


def _end_iteration(s: Span, items: list[Any], count: int, capture: bool, returned: Any) -> None:
    s.set_attribute("pilothouse.generator.items", count)
    if capture:
        s.output = items if returned is None else {"items": items, "returned": returned}
    s.end()
