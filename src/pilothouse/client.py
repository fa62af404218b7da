"""The Python SDK for the management API (the gateway itself is used with any OpenAI client).

from pilothouse import Pilothouse
ph = Pilothouse()                       # PILOTHOUSE_URL / PILOTHOUSE_API_KEY, or the local defaults
key = ph.create_key("ci", role="service")
for trace in ph.list_traces(model="smollm2-135m", limit=10)["data"]:
    print(trace["id"], trace["cost_usd"])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:7300"


class PilothouseError(Exception):
    """An error answer from the server (or no answer); `status` is 0 when the server was unreachable."""

    def __init__(self, message: str, *, status: int = 0, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body or {}


def default_api_key(data_dir: Path | None = None) -> str | None:
    """`PILOTHOUSE_API_KEY`, else the bootstrap key `pilothouse up` saved under the data directory."""
    env = os.environ.get("PILOTHOUSE_API_KEY")
    if env:
        return env
    directory = data_dir or Path(os.environ.get("PILOTHOUSE_DATA_DIR", ".pilothouse"))
    path = directory / "admin_key"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class Pilothouse:
    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("PILOTHOUSE_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or default_api_key()
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Pilothouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise PilothouseError(
                f"cannot reach the Pilothouse server at {self.url} ({exc}); start it with `pilothouse up` "
                "or set --url / PILOTHOUSE_URL"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            err = body.get("error") if isinstance(body, dict) else None
            message = err.get("message") if isinstance(err, dict) else response.text
            raise PilothouseError(f"{response.status_code}: {message}", status=response.status_code, body=body)
        return body

    # health
    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/readyz")
        return result

    # keys and projects
    def create_key(self, name: str, *, role: str = "service", project: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", "/api/keys", json={"name": name, "role": role, "project": project}
        )
        return result

    def list_keys(self, *, include_revoked: bool = True) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/keys", params={"include_revoked": include_revoked})[
            "data"
        ]
        return result

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", f"/api/keys/{key_id}")
        return result

    def create_project(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/api/projects", json={"name": name})
        return result

    def list_projects(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/projects")["data"]
        return result

    # traces
    def list_traces(self, **filters: Any) -> dict[str, Any]:
        """Filters: since, until (epoch or ISO 8601), model, status, user, session, limit, cursor."""
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self.request("GET", "/api/traces", params=params)
        return result

    def get_trace(self, trace_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/traces/{trace_id}")
        return result

    # models
    def list_models(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/v1/models")["data"]
        return result

    # audit
    def audit_events(self, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/audit", params={"after": after, "limit": limit})[
            "data"
        ]
        return result

    def verify_audit(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/audit/verify")
        return result
