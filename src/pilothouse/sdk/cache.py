"""The cache methods of the `Pilothouse` client, as `ph.cache` (a mixin, so sdk/client.py stays small).

ph = Pilothouse()
found = ph.cache.explain("How do I enable dark mode?", "How can I turn on dark mode?")
print(found["similarity"], found["threshold"], found["answer"])    # ... "would hit" or "would not hit: ..."
ph.cache.set_threshold(0.88)                                        # this project's own (admin role)
print(ph.cache.threshold()["threshold"])
ph.cache.clear_threshold()                                          # back to cache.semantic.threshold
"""

from __future__ import annotations

from typing import Any, Protocol


class _Requests(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


class CacheApi:
    """`ph.cache`: explain a pair of questions; read, set and clear a project's similarity threshold."""

    def __init__(self, client: _Requests) -> None:
        self._client = client

    def explain(self, question: str, cached: str, *, project: str | None = None) -> dict[str, Any]:
        """Whether `question` would get the answer cached for `cached`: `similarity`, `threshold` (and
        `threshold_source`: project or default), the `contrast` check's verdict (`ok`, `reason`, `kind`),
        `decision`, `would_hit` and `answer`. `project`: whose threshold applies (owner keys: another)."""
        body: dict[str, Any] = {"question": question, "cached": cached}
        if project is not None:
            body["project"] = project
        result: dict[str, Any] = self._client.request("POST", "/api/cache/explain", json=body)
        return result

    def threshold(self, *, project: str | None = None) -> dict[str, Any]:
        """The threshold that applies to the project (`threshold`, `source`, `default`, `override`)."""
        params = {"project": project} if project is not None else None
        result: dict[str, Any] = self._client.request("GET", "/api/cache/threshold", params=params)
        return result

    def set_threshold(self, threshold: float, *, project: str | None = None) -> dict[str, Any]:
        """Give the project its own threshold, 0.5 to 1.0 (admin role); `previous` is the one it replaced."""
        body: dict[str, Any] = {"threshold": threshold}
        if project is not None:
            body["project"] = project
        result: dict[str, Any] = self._client.request("PUT", "/api/cache/threshold", json=body)
        return result

    def clear_threshold(self, *, project: str | None = None) -> dict[str, Any]:
        """Remove the project's own threshold (admin role); `changed` is false when it had none."""
        params = {"project": project} if project is not None else None
        result: dict[str, Any] = self._client.request("DELETE", "/api/cache/threshold", params=params)
        return result


class CacheMixin:
    @property
    def cache(self: _Requests) -> CacheApi:
        """The cache methods: `explain`, `threshold`, `set_threshold`, `clear_threshold`."""
        return CacheApi(self)
