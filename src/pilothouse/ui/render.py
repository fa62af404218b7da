"""Rendering pages: one Jinja2 environment over the package's templates, with the filters pages share.

`page(ctx, "traces/list.html", title=..., **values)` renders a full page inside `base.html` (navigation,
the session's project and role, the CSRF token for actions); `fragment(ctx, "traces/_rows.html", ...)` renders
a piece that a live view (`data-live`, static/pilothouse.js) swaps in without a reload.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from pilothouse.money import usd
from pilothouse.ui.context import UiContext
from pilothouse.ui.nav import current_section, sections_for


def when(ts: float | None) -> str:
    """Epoch seconds as `2026-12-07 17:46:14` (UTC); an empty string for None."""
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    """Milliseconds as people read them: `850 ms`, `2.4 s`, `3 min 5 s`."""
    if ms is None or not math.isfinite(float(ms)):
        return "-"
    ms = float(ms)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{int(ms // 60_000)} min {int(ms % 60_000 // 1000)} s"


def money(value: Decimal | int | float | str | None) -> str:
    """US dollars; ints are picodollars (the store's unit), strings and Decimals dollars."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        raise TypeError("money() takes an amount, not a bool")
    if isinstance(value, int):
        return usd(value)
    return usd(Decimal(str(value)))


def number(value: float | int | None, digits: int = 0) -> str:
    """A count or measure with thousands separators (`12,345`, `0.93` with digits=2)."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def percent(value: float | None, digits: int = 1) -> str:
    """A share (0..1) as a percentage."""
    if value is None:
        return "-"
    return f"{100 * value:.{digits}f}%"


def to_json(value: Any) -> Markup:
    """Pretty JSON for a <pre> block (escaped by autoescape when rendered as text)."""
    return Markup.escape(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


__version__ = importlib.metadata.version("pilothouse")  # not `pilothouse.__version__`: that imports the SDK

_env = Environment(
    loader=PackageLoader("pilothouse.ui", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(when=when, duration=duration, money=money, number=number, percent=percent, pretty=to_json)


def _common(ctx: UiContext) -> dict[str, Any]:
    return {
        "principal": ctx.principal,
        "csrf_token": ctx.csrf_token,
        "sections": sections_for(ctx.principal.role),
        "current": current_section(ctx.request.url.path),
        "path": ctx.request.url.path,
        "query": dict(ctx.request.query_params),
        "version": __version__,
    }


def page(ctx: UiContext, template: str, *, title: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = _env.get_template(template).render(_common(ctx), title=title, **values)
    return HTMLResponse(html, status_code=status_code, headers=_NO_STORE)


def fragment(ctx: UiContext, template: str, **values: Any) -> HTMLResponse:
    html = _env.get_template(template).render(_common(ctx), **values)
    return HTMLResponse(html, headers=_NO_STORE)


def bare(template: str, *, status: int = 200, headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:
    """A page outside a session (sign-in, errors before sign-in)."""
    html = _env.get_template(template).render(version=__version__, **values)
    return HTMLResponse(html, status_code=status, headers={**_NO_STORE, **(headers or {})})


_NO_STORE = {
    "Cache-Control": "no-store",  # pages hold a person's data: never in a shared cache
    # Only the package's own script runs (no inline script, nothing from elsewhere); no framing (clickjacking);
    # forms post only here. Inline style attributes are allowed: the span timeline and chart swatches use them.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
