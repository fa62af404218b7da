"""The Python SDK for the management API (the gateway itself is used with any OpenAI client).

from pilothouse import Pilothouse
ph = Pilothouse()                       # PILOTHOUSE_URL / PILOTHOUSE_API_KEY, or the local defaults
key = ph.create_key("ci", role="service")
for trace in ph.list_traces(model="smollm2-135m", limit=10)["data"]:
    print(trace["id"], trace["cost_usd"])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pilothouse.sdk.annotations import AnnotationsMixin
from pilothouse.sdk.budgets import BudgetsMixin
from pilothouse.sdk.cache import CacheMixin
from pilothouse.sdk.costs import CostsMixin
from pilothouse.sdk.datasets import DatasetsMixin
from pilothouse.sdk.experiments import ExperimentsMixin
from pilothouse.sdk.flows import FlowsMixin
from pilothouse.sdk.prompts import PromptsMixin
from pilothouse.sdk.rag import RagClient
from pilothouse.sdk.trace_review import TraceReviewMixin

if TYPE_CHECKING:
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


class Pilothouse(
    PromptsMixin,
    CostsMixin,
    BudgetsMixin,
    CacheMixin,
    TraceReviewMixin,
    DatasetsMixin,
    ExperimentsMixin,
    AnnotationsMixin,
    FlowsMixin,
):
    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("PILOTHOUSE_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or default_api_key()
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        # httpx is imported here, not at module level: `import pilothouse` and the CLI's `--help` stay fast.
        import httpx

        self._http: httpx.Client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.rag = RagClient(self)
        """Retrieval: `ph.rag.query(collection, text, ...)` (sdk/rag.py)."""

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Pilothouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

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
        """`role`: viewer, service, developer, admin or owner (an owner key creates owner keys, and keys in
        another `project`)."""
        result: dict[str, Any] = self.request(
            "POST", "/api/keys", json={"name": name, "role": role, "project": project}
        )
        return result

    def list_keys(self, *, include_revoked: bool = True, project: str | None = None) -> list[dict[str, Any]]:
        """The keys of the caller's project; owner keys may name another `project` or `all`."""
        params: dict[str, Any] = {"include_revoked": include_revoked}
        if project:
            params["project"] = project
        result: list[dict[str, Any]] = self.request("GET", "/api/keys", params=params)["data"]
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
        """Filters: since, until (epoch or ISO 8601), model, status, user, session, source (http, prompt_test,
        eval, flow, sdk), prompt, prompt_version, tag, cost_min, cost_max (USD), latency_min_ms, latency_max_ms,
        score (e.g. "groundedness<0.5"), q (words of the kept content), order (newest, cost: costliest first,
        latency: slowest first), limit, cursor."""
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self.request("GET", "/api/traces", params=params)
        return result

    def content_capture(self, *, project: str | None = None) -> dict[str, Any]:
        """The project's content capture (`mode`: off, redacted or full; `source`: project or default)."""
        params = {"project": project} if project is not None else None
        result: dict[str, Any] = self.request("GET", "/api/projects/capture", params=params)
        return result

    def set_content_capture(self, mode: str, *, project: str | None = None) -> dict[str, Any]:
        """Set what of the project's trace content is stored: off, redacted or full (admin role)."""
        body: dict[str, Any] = {"mode": mode} | ({"project": project} if project is not None else {})
        result: dict[str, Any] = self.request("PUT", "/api/projects/capture", json=body)
        return result

    def get_trace(self, trace_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/traces/{trace_id}")
        return result

    # scores (feedback, evaluations)
    def score(
        self,
        trace_id: str,
        name: str,
        value: float | bool | str,
        *,
        comment: str | None = None,
        source: str = "human",
        span_id: str | None = None,
        data_type: str | None = None,
    ) -> dict[str, Any]:
        """Attach a score to a trace, or to one of its spans (`span_id`): a number (`value=0.8`), a boolean
        (`value=True`) or a category (`value="spam"`); `source`: human, code or judge. `data_type` (numeric,
        boolean, categorical) overrides the type `value` implies, e.g. `value=1, data_type="boolean"`."""
        body: dict[str, Any] = {"trace_id": trace_id, "name": name, "source": source, "comment": comment}
        body["string_value" if isinstance(value, str) else "value"] = value
        if span_id is not None:
            body["span_id"] = span_id
        if data_type is not None:
            body["data_type"] = data_type
        result: dict[str, Any] = self.request("POST", "/api/scores", json=body)
        return result

    def list_scores(self, **filters: Any) -> dict[str, Any]:
        """Filters: trace_id, span_id, name, source, data_type, limit, cursor. Returns {"data": [...],
        "next_cursor": ...}."""
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self.request("GET", "/api/scores", params=params)
        return result

    # prompt canaries and per-version statistics
    def set_canary(
        self,
        name: str,
        label: str,
        *,
        baseline: int,
        candidate: int,
        weight: float,
        rollback_rule: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Split `label` between `baseline` and `candidate` (`weight` percent), with an optional rollback rule
        {"metric": "score:NAME" | "error_rate" | "cost_per_request" | "latency_ms", "min_samples", "alpha"}."""
        body = {"baseline": baseline, "candidate": candidate, "weight": weight, "rollback_rule": rollback_rule}
        result: dict[str, Any] = self.request("PUT", f"/api/prompts/{name}/labels/{label}/canary", json=body)
        return result

    def get_canary(self, name: str, label: str) -> dict[str, Any]:
        """The label's split, rollback rule and the live comparison of candidate against baseline."""
        result: dict[str, Any] = self.request("GET", f"/api/prompts/{name}/labels/{label}/canary")
        return result

    def check_canary(self, name: str, label: str) -> dict[str, Any]:
        """Run the rollback rule now; the answer says whether the label was rolled back, and why."""
        result: dict[str, Any] = self.request("POST", f"/api/prompts/{name}/labels/{label}/canary/check")
        return result

    def prompt_stats(
        self, name: str, *, since: str | None = None, until: str | None = None, label: str | None = None
    ) -> dict[str, Any]:
        """Per version and per day: calls, error rate, latency p50/p95, tokens, cost per call, scores, in the window
        from `since` to `until` (a duration before now such as `7d`, epoch seconds or ISO 8601)."""
        params = {k: v for k, v in {"since": since, "until": until, "label": label}.items() if v is not None}
        result: dict[str, Any] = self.request("GET", f"/api/prompts/{name}/stats", params=params)
        return result

    # prompt scenario tests and gated promotion
    def prompt_tests(self, name: str) -> list[dict[str, Any]]:
        """The scenario test cases stored for a prompt (as pushed from its `NAME.tests.yaml`)."""
        result: list[dict[str, Any]] = self.request("GET", f"/api/prompts/{name}/tests")["cases"]
        return result

    def promote_prompt(
        self,
        name: str,
        version: int,
        *,
        to: str = "production",
        force: bool = False,
        reason: str | None = None,
        gate: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Move label `to` to `version` if it passes the prompt's scenario tests and is no worse than the
        current version; a refusal raises PilothouseError (status 409) whose `body["comparison"]` says why.
        `force=True` moves it anyway and records `prompt.promote.forced` in the audit log. `gate`
        (`{"dataset": NAME, "metrics": [{"name": "contains"}], "alpha": 0.05, ...}`) also runs the regression gate
        against the current version first; a significant regression raises with `body["gate"]`."""
        body: dict[str, Any] = {"version": version, "to": to, "force": force, "reason": reason}
        if gate is not None:
            body["gate"] = dict(gate)
        # The server runs the suite for both versions before answering: allow it time.
        result: dict[str, Any] = self.request("POST", f"/api/prompts/{name}/promote", json=body, timeout=900.0)
        return result

    # models
    def list_models(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/v1/models")["data"]
        return result

    # audit
    def audit_events(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        project: str | None = None,
        action: str | Sequence[str] | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        actor: str | None = None,
        target: str | None = None,
    ) -> list[dict[str, Any]]:
        """Audit events of the caller's project, oldest first; owner keys may name another `project` or `all`.
        `action`: one or more actions (`prompt.label` also matches `prompt.label.move`); `since` (inclusive) and
        `until` (exclusive): a duration before now (`7d`, `24h`), epoch seconds or ISO 8601; `actor`: the key id
        that acted; `target`: the object acted on."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        if project:
            params["project"] = project
        if action:
            params["action"] = [action] if isinstance(action, str) else list(action)
        if since is not None:
            params["since"] = str(since)
        if until is not None:
            params["until"] = str(until)
        if actor:
            params["actor"] = actor
        if target:
            params["target"] = target
        result: list[dict[str, Any]] = self.request("GET", "/api/audit", params=params)["data"]
        return result

    def verify_audit(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/audit/verify")
        return result
