"""The prompt-template sandbox: Jinja2's sandbox plus a bound on the time and memory one render may use.

Jinja2's `ImmutableSandboxedEnvironment` keeps templates away from Python internals and from mutating their
inputs, but not from running for long or building huge values: nested `range` loops ran for seconds and
`'x' * 10**9` builds a gigabyte. A thread cannot be interrupted, so the bound is cooperative, and every place
where a template can spend time or memory takes part:

- each render runs under a `Budget`: a deadline (`RENDER_TIMEOUT_S`) and a count of the characters written;
- the parsed template is rewritten before it is compiled, so that every `{% for %}` iterates through a guard,
  every piece of output (literal text too, inside macros and `{% set %}` blocks as well) is counted, and
  every `~` concatenation and list, tuple or dict literal is size-checked;
- calls, filters, tests, attribute lookups and the `*`, `**`, `+`, `%` operators check the deadline, refuse
  results larger than `MAX_VALUE_SIZE` before building them where one step could build much more (repetition,
  padding, replacing, joining, formatting widths), and check every result after.

So between two checks a template can only do work proportional to values that are already bounded. A breach
raises `RenderLimitError` with code `template_too_expensive` or `template_output_too_large`.
"""

from __future__ import annotations

import inspect
import re
import string
import time
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import update_wrapper
from typing import Any, Final

from jinja2 import StrictUndefined, Template, nodes, pass_context
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

RENDER_TIMEOUT_S: Final = 1.0
"""The longest one render (all of a prompt's messages) may run."""
MAX_OUTPUT_CHARS: Final = 1_000_000
"""The most characters one render may produce (all messages together)."""
MAX_VALUE_SIZE: Final = 1_000_000
"""The largest value a template may build: a string's length; a container counts its items' sizes plus one
each (an item held twice counts twice), which is about the length it prints as."""
MAX_WRITTEN_CHARS: Final = 4 * MAX_OUTPUT_CHARS
"""The most characters one render may write anywhere (its output plus macro and `{% set %}` block bodies)."""
MAX_RANGE: Final = 100_000
"""The most items one `range()` may have."""
MAX_EXPONENT: Final = 1_000
MAX_INT_BITS: Final = 16_384
MAX_NESTING: Final = 64
"""The deepest a value a template builds may nest lists, tuples and dicts."""

TOO_EXPENSIVE: Final = "template_too_expensive"
TOO_LARGE: Final = "template_output_too_large"


class RenderLimitError(Exception):
    """A render went past one of the bounds; `code` is TOO_EXPENSIVE (time, depth) or TOO_LARGE (size)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _too_large(what: str, size: int | float) -> RenderLimitError:
    return RenderLimitError(
        TOO_LARGE,
        f"{what} would build a value of about {size:,.0f} characters; templates may build at most "
        f"{MAX_VALUE_SIZE:,} (make the template do less, or pass the text in a variable)",
    )


# -- the budget of one render ----------------------------------------------------------------------------------
@dataclass
class Budget:
    """The deadline and the characters written so far of one render (see `budget`)."""

    deadline: float
    timeout_s: float
    written: int = 0
    output: int = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitError(
                TOO_EXPENSIVE,
                f"rendering took longer than {self.timeout_s:g} s and was stopped "
                "(loops over large ranges or nested loops do too much work for a prompt)",
            )

    def write(self, chars: int) -> None:
        self.written += chars
        if self.written > MAX_WRITTEN_CHARS:
            raise RenderLimitError(
                TOO_LARGE, f"the template wrote more than {MAX_WRITTEN_CHARS:,} characters (macros and blocks included)"
            )
        self.tick()


_CURRENT: ContextVar[Budget | None] = ContextVar("pilothouse_render_budget", default=None)


@contextmanager
def budget(timeout_s: float = RENDER_TIMEOUT_S) -> Iterator[Budget]:
    """Run the renders inside the `with` block under one budget (per thread; renders never share one)."""
    current = Budget(time.monotonic() + timeout_s, timeout_s)
    token = _CURRENT.set(current)
    try:
        yield current
    finally:
        _CURRENT.reset(token)


def _tick() -> None:
    current = _CURRENT.get()
    if current is not None:
        current.tick()


# -- sizes -----------------------------------------------------------------------------------------------------
def size_of(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """About the length `value` prints as: a string's length; a container's items' sizes plus one each, an item
    held twice counted twice. Shared items are measured once (so a list doubled 40 times costs 40 steps), and
    counting stops once past `limit`."""
    if isinstance(value, str | bytes):
        return len(value)
    known: dict[int, int] = {}

    def walk(item: Any, depth: int) -> int:
        if isinstance(item, str | bytes | bytearray):
            return len(item)
        if isinstance(item, bool) or item is None:
            return 1
        if isinstance(item, int):
            return item.bit_length() // 3 + 1
        if isinstance(item, Namespace):
            item = object.__getattribute__(item, "_Namespace__attrs")
        if isinstance(item, dict):
            children: Iterable[Any] = (x for pair in item.items() for x in pair)
        elif isinstance(item, list | tuple | set | frozenset):
            children = item
        else:
            return 1
        seen = known.get(id(item))
        if seen is not None:
            return seen
        if depth >= MAX_NESTING:  # also where a namespace holding itself ends
            raise RenderLimitError(TOO_EXPENSIVE, f"values nested more than {MAX_NESTING} levels deep")
        total = 1 + len(item)
        for child in children:
            total += walk(child, depth + 1)
            if total > limit:
                break
        known[id(item)] = total
        return total

    return walk(value, 0)


def _check(value: Any, what: str) -> Any:
    """`value` if it is within MAX_VALUE_SIZE; a lazy sequence comes back as one that counts what it yields."""
    if isinstance(value, types.GeneratorType | map | filter | zip | reversed):
        return _bounded(value, what)
    if value is None or isinstance(value, bool | float | range):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise RenderLimitError(TOO_LARGE, f"{what} would build an integer of more than {MAX_INT_BITS:,} bits")
        return value
    size = size_of(value)
    if size > MAX_VALUE_SIZE:
        raise _too_large(what, size)
    return value


def _bounded(items: Iterator[Any], what: str) -> Iterator[Any]:
    produced = 0
    for item in items:
        _tick()
        produced += size_of(item) + 1
        if produced > MAX_VALUE_SIZE:
            raise _too_large(what, produced)
        yield item


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _pre(what: str, size: int | float) -> None:
    if size > MAX_VALUE_SIZE:
        raise _too_large(what, size)


# -- formatting widths -------------------------------------------------------------------------------------------
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _largest(args: Any) -> int:
    values = args.values() if isinstance(args, dict) else args if isinstance(args, tuple | list) else (args,)
    return max((size_of(v) for v in values), default=0)


def _printf_size(fmt: str, args: Any) -> int:
    """An upper bound on the length of `fmt % args`."""
    total, fields = len(fmt), 0
    for match in _PRINTF.finditer(fmt):
        width, precision = match.groups()
        if "*" in (width, precision):
            raise RenderLimitError(TOO_LARGE, "'*' widths in % formatting are not allowed in prompt templates")
        fields += 1
        total += int(width or 0) + int(precision or 0)
    return total + fields * _largest(args)


def _format_size(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """An upper bound on the length of `fmt.format(*args, **kwargs)`."""
    total, fields = len(fmt), 0
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is None:
            continue
        if spec and "{" in spec:
            raise RenderLimitError(TOO_LARGE, "nested {} in format specs are not allowed in prompt templates")
        fields += 1
        total += sum(int(n) for n in _DIGITS.findall(spec or ""))
    return total + fields * max(_largest(args), _largest(kwargs))


# -- what may build large values -----------------------------------------------------------------------------
def _check_str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a str/bytes method call whose result would be too large; returns the arguments to call with."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes) or not isinstance(method, types.BuiltinMethodType):
        return args
    name, length = method.__name__, len(owner)
    what = f"'.{name}()'"
    if name in ("center", "ljust", "rjust", "zfill"):
        _pre(what, _int(args[0] if args else kwargs.get("width")))
    elif name == "expandtabs":
        tab = _int(args[0] if args else kwargs.get("tabsize", 8))
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        _pre(what, length + tabs * tab)
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        found = owner.count(old) if len(old) else length + 1
        if len(args) > 2 and _int(args[2]) >= 0:
            found = min(found, _int(args[2]))
        _pre(what, length + found * max(0, len(new) - len(old)))
    elif name == "join" and args:
        items = list(args[0])
        _pre(what, size_of(items) + length * max(0, len(items) - 1))
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str | bytes)), default=1)
        _pre(what, length * longest)
    return args


def _binop_size(operator: str, left: Any, right: Any) -> None:
    """Refuse `left <operator> right` before computing it when the result would be too large."""
    if operator == "**":
        if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise RenderLimitError(TOO_LARGE, f"exponent {right} is too large (at most {MAX_EXPONENT})")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > MAX_INT_BITS:
            raise RenderLimitError(TOO_LARGE, f"'**' would build an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                _pre("'*' repetition", size_of(seq) * times)
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise RenderLimitError(TOO_LARGE, f"'*' would build an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "+":
        if isinstance(left, str | bytes | list | tuple) and isinstance(right, str | bytes | list | tuple):
            _pre("'+'", size_of(left) + size_of(right))
    elif operator == "%" and isinstance(left, str):
        _pre("'%' formatting", _printf_size(left, right))


def _filter_pre(name: str, arguments: dict[str, Any]) -> None:
    """Refuse a filter call whose result would be too large (or slow), from its arguments (bound by name; the
    sequence of `join` and `sum` already made a list)."""
    what = f"the '{name}' filter"
    if name == "center":
        _pre(what, _int(arguments.get("width")))
    elif name == "indent":
        width = arguments.get("width")
        pad = len(width) if isinstance(width, str) else _int(width)
        _pre(what, size_of(arguments.get("s")) + (str(arguments.get("s")).count("\n") + 1) * pad)
    elif name == "replace":
        text, old, new = str(arguments.get("s")), str(arguments.get("old")), str(arguments.get("new"))
        found = text.count(old) if old else len(text) + 1
        count = arguments.get("count")
        if count is not None and _int(count) >= 0:
            found = min(found, _int(count))
        _pre(what, len(text) + found * max(0, len(new) - len(old)))
    elif name == "format":
        args = arguments.get("kwargs") or arguments.get("args") or ()
        _pre(what, _printf_size(str(arguments.get("value")), args))
    elif name in ("batch", "slice"):
        count = _int(arguments.get("linecount" if name == "batch" else "slices"))
        if count > MAX_RANGE:
            raise RenderLimitError(TOO_LARGE, f"{what} makes at most {MAX_RANGE:,} items per group")
    elif name == "wordwrap":
        text = str(arguments.get("s"))
        lines = len(text) // max(1, _int(arguments.get("width"))) + text.count("\n") + 1
        if lines > MAX_RANGE:
            raise RenderLimitError(TOO_EXPENSIVE, f"{what} would make more than {MAX_RANGE:,} lines")
        _pre(what, len(text) + lines * len(str(arguments.get("wrapstring") or "\n")))
    elif name == "join":
        items = arguments["value"]
        _pre(what, size_of(items) + len(str(arguments.get("d"))) * len(items))
    elif name == "sum" and not isinstance(arguments.get("start"), int | float):
        # adding up sequences copies the running total each time: quadratic in the number of items
        if len(arguments["iterable"]) * size_of(arguments["iterable"], 10 * MAX_VALUE_SIZE) > 10 * MAX_VALUE_SIZE:
            raise RenderLimitError(TOO_EXPENSIVE, f"{what} would copy too much adding up these sequences")
    elif name == "tojson":
        indent = arguments.get("indent")
        pad = len(indent) if isinstance(indent, str) else _int(indent)
        _pre(what, size_of(arguments.get("value")) * (pad + 2))


_PRECHECKED = {"center", "indent", "replace", "format", "batch", "slice", "wordwrap", "tojson", "join", "sum"}
_MATERIALIZE = {"join": "value", "sum": "iterable"}
"""Filters whose sequence argument is made a list first, so its size can be checked before the result is built."""


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(func) if name in _PRECHECKED else None
    # Jinja passes the context/environment first; some filters' signatures (their sync variant's) leave it out
    first = next(iter(signature.parameters), None) if signature is not None else None
    passed = getattr(func, "jinja_pass_arg", None) is not None and first not in ("eval_ctx", "environment", "context")
    skip = 1 if passed else 0

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if signature is not None:
            bound = signature.bind(*args[skip:], **kwargs)
            bound.apply_defaults()
            key = _MATERIALIZE.get(name)
            if key is not None:
                bound.arguments[key] = list(bound.arguments[key])
            _filter_pre(name, bound.arguments)
            args, kwargs = (*args[:skip], *bound.args), bound.kwargs
        return _check(func(*args, **kwargs), f"the '{name}' filter")

    update_wrapper(guarded, func)  # keeps the pass_context/pass_environment marker
    return guarded


def _guard_test(func: Any) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        return func(*args, **kwargs)

    update_wrapper(guarded, func)
    return guarded


def _range(*args: int) -> range:
    _tick()
    items = range(*args)
    try:
        count = len(items)
    except OverflowError:
        count = MAX_RANGE + 1
    if count > MAX_RANGE:
        raise RenderLimitError(TOO_EXPENSIVE, f"range() may have at most {MAX_RANGE:,} items, this one has more")
    return items


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if _int(n) * _int(max) > 10_000:
        raise RenderLimitError(TOO_LARGE, "lipsum() makes at most 10,000 words")
    return generate_lorem_ipsum(n, html, min, max)


# -- the hooks the rewritten template calls ----------------------------------------------------------------------
@pass_context  # pass_context also keeps Jinja from evaluating these at compile time
def _loop(context: Context, iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


@pass_context
def _emit(context: Context, value: Any) -> Any:
    current = _CURRENT.get()
    if current is not None:
        current.write(size_of(value, MAX_WRITTEN_CHARS))
    return value


@pass_context
def _concat(context: Context, parts: tuple[Any, ...]) -> str:
    _tick()
    _pre("'~'", sum(size_of(p) for p in parts))
    return str(markup_join(parts) if context.eval_ctx.autoescape else str_join(parts))


@pass_context
def _literal(context: Context, value: Any) -> Any:
    _tick()
    return _check(value, "a literal")


_LOOP, _EMIT, _CONCAT, _LITERAL = "pilothouse:loop", "pilothouse:emit", "pilothouse:concat", "pilothouse:literal"


def _hook(name: str, node: nodes.Node) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Instrument(NodeTransformer):
    """Routes loops, output, `~` and container literals of a parsed template through the hooks above."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _hook(_LOOP, node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_hook(_EMIT, child) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _hook(_CONCAT, nodes.Tuple(node.nodes, "load", lineno=node.lineno))

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node, nodes.Tuple) and node.ctx != "load":
            return node
        return _hook(_LITERAL, node)

    visit_List = visit_Tuple = visit_Dict = _literal


# -- the environment -------------------------------------------------------------------------------------------
class PromptSandbox(ImmutableSandboxedEnvironment):
    """The sandbox prompt templates run in; see the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        self.filters.update({_LOOP: _loop, _EMIT: _emit, _CONCAT: _concat, _LITERAL: _literal})
        self.tests = {name: _guard_test(func) for name, func in self.tests.items()}
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _binop_size(operator, left, right)
        return _check(super().call_binop(context, operator, left, right), f"'{operator}'")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        args = _check_str_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return _check(result, f"calling {getattr(__obj, '__name__', 'a function')}()")

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = str(value.__self__)
        mapping = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            _pre("'.format()'", _format_size(fmt, (), args[0]) if mapping and args else _format_size(fmt, args, kwargs))
            return str(_check(wrapped(*args, **kwargs), "'.format()'"))

        return checked

    def compile_source(self, source: str) -> Template:
        """Parse, instrument (see `_Instrument`) and compile one template source."""
        ast = _Instrument().visit(self.parse(source))
        ast.set_environment(self)
        return self.from_string(ast)


def generate(template: Template, values: dict[str, Any]) -> str:
    """Render `template` under the current budget, counting its output against MAX_OUTPUT_CHARS as it is made."""
    current = _CURRENT.get()
    parts: list[str] = []
    for chunk in template.generate(values):
        parts.append(chunk)
        if current is not None:
            current.output += len(chunk)
            if current.output > MAX_OUTPUT_CHARS:
                raise RenderLimitError(TOO_LARGE, f"the rendered prompt is longer than {MAX_OUTPUT_CHARS:,} characters")
    return "".join(parts)
