"""Reviewing traces from the `Pilothouse` client: explain one, follow new ones, relay end-user feedback.

ph = Pilothouse()
why = ph.explain_trace(trace_id)              # prompt and version, model, chunks, guards, tools, path, scores
ph.feedback(trace_id, thumbs="up", comment="spot on", user_id="u-42")
for trace in ph.tail_traces(follow=True, filters={"model": "smollm2-135m"}):   # until Ctrl-C
    print(trace["id"], trace["status"], trace["cost_usd"])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

TAIL_PAGE = 200
"""Traces asked for per request while following."""
_sleep = time.sleep


class TraceReviewMixin:
    if TYPE_CHECKING:

        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def explain_trace(self, trace_id: str) -> dict[str, Any]:
        """Why a trace answered as it did: sections `trace`, `prompt`, `model`, `answer`, `retrieval`, `guards`,
        `tools`, `path` (spans in tree order with cost and latency), `cost`, `scores` and `feedback`."""
        result: dict[str, Any] = self.request("GET", f"/api/traces/{trace_id}/explain")
        return result

    def feedback(
        self, trace_id: str, *, thumbs: str, comment: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        """Record an end user's feedback on a trace: `thumbs` "up" or "down", an optional comment and the end
        user's id in your application. It is also the trace's boolean score `feedback` (1 up, 0 down)."""
        body: dict[str, Any] = {"trace_id": trace_id, "thumbs": thumbs}
        if comment is not None:
            body["comment"] = comment
        if user_id is not None:
            body["user_id"] = user_id
        result: dict[str, Any] = self.request("POST", "/api/feedback", json=body)
        return result

    def tail_traces(
        self,
        *,
        follow: bool = False,
        last: int = 10,
        interval_s: float = 1.0,
        lookback_s: float = 60.0,
        sleep: Callable[[float], None] | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The `last` newest traces matching `filters` (those of `list_traces`: model, status, user, ...), oldest
        first; with `follow`,
        then every trace stored afterwards, polling every `interval_s` seconds, until the caller stops.

        A trace is stored when it ends, so one that started before a trace already shown may appear later:
        each poll looks `lookback_s` seconds behind the newest start seen and skips the ids already shown."""
        wanted = {k: v for k, v in (filters or {}).items() if v is not None}
        newest = self.request("GET", "/api/traces", params={**wanted, "limit": max(1, min(last, 500))})["data"]
        shown = {t["id"]: t["started_at"] for t in newest}  # with last=0 too: where following starts
        yield from reversed(newest[:last])
        pause = sleep or _sleep
        while follow:
            pause(interval_s)
            high = max(shown.values(), default=None)
            since = None if high is None else repr(high - lookback_s)
            fresh = self._new_traces(wanted, since, shown)
            for trace in sorted(fresh, key=lambda t: (t["started_at"], t["id"])):
                shown[trace["id"]] = trace["started_at"]
                yield trace
            if high is not None:
                horizon = max(shown.values()) - 2 * lookback_s
                for trace_id in [i for i, started in shown.items() if started < horizon]:
                    del shown[trace_id]

    def _new_traces(self, filters: dict[str, Any], since: str | None, shown: dict[str, float]) -> list[dict[str, Any]]:
        """Traces since `since` not in `shown`, newest pages first, until a page holds nothing new."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {**filters, "limit": TAIL_PAGE}
            if since is not None:
                params["since"] = since
            if cursor is not None:
                params["cursor"] = cursor
            page = self.request("GET", "/api/traces", params=params)
            fresh = [t for t in page["data"] if t["id"] not in shown]
            found.extend(fresh)
            cursor = page["next_cursor"]
            if not fresh or cursor is None:
                return found
