"""docs/security.md's route table is the access policy, and the server keeps it.

The table lists exactly the server's routes (the FastAPI app's and the two plain-ASGI gateway paths). Then
every route is walked in-process (SQLite, the fake model) with a key of each role in project A: acting on A's
objects, each role is let in or refused with 403 exactly as the table's minimum role says; acting on project
B's objects (its id or name in a `project` parameter or a subject, or an id of its trace, key, budget, limit
or prompt), only an owner key gets through, and only on the routes the table marks "any project (owner)".
Any other key is refused (403 for a named project, 404 for an object id, as for one that does not exist), and
nothing of B appears in what A's keys are shown. The owner's cross-project actions are audited in B.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from pilothouse.config import Deployment, LocalModelSettings, ModelEntry, Settings
from pilothouse.datasets.items import validate_items
from pilothouse.server.app import create_app
from pilothouse.server.gateway_asgi import FAST_PATHS
from pilothouse.store.keys import ROLES
from pilothouse.store.tables import experiments
from tests.flows.faces.route_walk import flow_run, start_body

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"
OWNER_KEY = "ph-route-policy-owner-key-0123456789"
CHAT, EMBED = "fake-chat", "fake-embed"
MODELS = [
    ModelEntry(name=CHAT, deployments=[Deployment(provider="fake", model="fake")]),
    ModelEntry(name=EMBED, kind="embedding", deployments=[Deployment(provider="fake", model="fake")]),
]
NONE = "none"
OWN, ANY = "own project", "any project (owner)"
PUSHED = "walk-pushed"
TESTS_FILE = "- name: greets\n  variables: {who: Ada}\n  assert: [{contains: Ada}]\n"


# -- the table ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    minimum: str
    """The least role that may call the route, or `none` (no key needed)."""
    scope: str
    """own project, any project (owner), or none."""


def route_table() -> dict[str, Policy]:
    """`METHOD PATH` -> policy, from the one table under "## Roles and projects" that has a Route column."""
    section = DOC.read_text(encoding="utf-8").split("\n## Roles and projects\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, Policy] = {}
    in_table = False
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells[:3] == ["Route", "Minimum role", "Scope"]:
            in_table = True
            continue
        if not in_table or not cells or set(cells[0]) <= {"-"}:
            in_table = in_table and bool(cells)
            continue
        route = cells[0].strip("`")
        assert route not in rows, f"{route} is listed twice in {DOC.name}"
        rows[route] = Policy(cells[1], cells[2])
    assert rows, f"no route table under '## Roles and projects' in {DOC}"
    return rows


def app_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'pilothouse.db'}",
        include_default_models=False,
        models=MODELS,
        local=LocalModelSettings(preload=False),
        canary_check_interval_s=0,
    )


def _is_dashboard(route: Any) -> bool:
    """The dashboard's pages, sign-in and static files (ui/), which are not API routes."""
    if route.path.startswith("/ui/static"):
        return True
    endpoint = getattr(route, "endpoint", None)
    return endpoint is not None and getattr(endpoint, "__module__", "").startswith("pilothouse.ui")


def server_routes(tmp_path: Path) -> set[str]:
    app = create_app(app_settings(tmp_path))  # the routes exist once built; nothing is started
    # FastAPI 0.16x keeps included routers as such; iter_route_contexts flattens them (older: already flat).
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(flatten(app.api.routes) if flatten is not None else app.api.routes)
    found = {f"POST {path}" for path in FAST_PATHS}
    for route in routes:
        if _is_dashboard(route):  # HTML pages: tests/ui/test_page_roles.py walks them with every role
            continue
        assert isinstance(route.path, str) and route.methods, route
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {model_id:path} -> {model_id}
        found |= {f"{method} {path}" for method in route.methods if method != "HEAD"}
    return found


def test_the_table_lists_exactly_the_servers_routes(tmp_path: Path) -> None:
    table = route_table()
    routes = server_routes(tmp_path)
    assert sorted(routes - set(table)) == [], f"routes missing from the table in {DOC.name}"
    assert sorted(set(table) - routes) == [], f"rows of {DOC.name} that are not routes of the server"
    for route, policy in table.items():
        assert policy.minimum in (NONE, *ROLES), f"{route}: unknown minimum role {policy.minimum!r}"
        assert policy.scope in (NONE, OWN, ANY), f"{route}: unknown scope {policy.scope!r}"
        assert (policy.minimum == NONE) <= (policy.scope == NONE), f"{route}: project data needs a key"


def test_the_walk_covers_every_route_of_the_table() -> None:
    assert sorted(set(route_table()) ^ set(RECIPES)) == []


def test_every_route_the_app_registers_is_walked(tmp_path: Path) -> None:
    """A new route fails the suite until it has a row in the table and a recipe here (so it is walked with
    every role, and with keys of another project)."""
    unwalked = sorted(server_routes(tmp_path) - set(RECIPES))
    assert unwalked == [], f"routes with no recipe in RECIPES (and check their row in {DOC.name}): {unwalked}"


# -- the world the walk runs in -------------------------------------------------------------------------------
@dataclass
class Tenant:
    """A project with a key of every role and one object of each kind, all created by the bootstrap owner."""

    name: str
    id: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""
    experiment_id: str = ""
    budget_id: str = ""
    limit_id: str = ""

    @property
    def prompt(self) -> str:
        return f"{self.name}-prompt"  # a prompt name only this project has

    @property
    def policy(self) -> str:
        return f"{self.name}-policy"  # a guard policy name only this project has

    @property
    def tool(self) -> str:
        return f"{self.name}-tool"  # a tool name only this project has

    @property
    def collection(self) -> str:
        return f"{self.name}-docs"  # a RAG collection name only this project has

    @property
    def drift_rule(self) -> str:
        return f"{self.name}-drift"  # an input_drift monitor rule only this project has

    @property
    def queue(self) -> str:
        return f"{self.name}-queue"  # an annotation queue only this project has

    @property
    def dataset(self) -> str:
        return f"{self.name}-dataset"  # a dataset name only this project has

    def secrets(self) -> set[str]:
        """Strings that may only appear in answers given to this project's keys (or to an owner)."""
        return {
            self.id,
            self.name,
            self.trace_id,
            self.prompt,
            self.policy,
            self.tool,
            self.collection,
            self.dataset,
            self.queue,
            self.drift_rule,
            self.experiment_id,
            self.budget_id,
            self.limit_id,
            *self.key_ids.values(),
        }


class World:
    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.counter = itertools.count()
        self.a = Tenant("tenant-alpha")
        self.b = Tenant("tenant-beta")

    def call(self, method: str, path: str, key: str | None = OWNER_KEY, **kwargs: Any) -> httpx.Response:
        headers = {} if key is None else {"authorization": f"Bearer {key}"}
        return self.http.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, key: str = OWNER_KEY, **kwargs: Any) -> Any:
        response = self.call(method, path, key, **kwargs)
        assert response.status_code < 300, f"setup {method} {path}: {response.status_code} {response.text}"
        return response.json()

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    @staticmethod
    def push_files(name: str, greeting: str) -> dict[str, Any]:
        prompt = (
            f"name: {name}\nmodel: {CHAT}\nvariables:\n  who: {{type: string}}\n"
            f'messages:\n  - role: user\n    content: "{greeting} {{{{ who }}}}"\n'
        )
        files = [{"path": f"{name}.yaml", "content": prompt}, {"path": f"{name}.tests.yaml", "content": TESTS_FILE}]
        return {"files": files}

    def populate(self, tenant: Tenant) -> None:
        tenant.id = self.ok("POST", "/api/projects", json={"name": tenant.name})["id"]
        for role in ROLES:
            body = {"name": f"{role}-key", "role": role, "project": tenant.name}
            created = self.ok("POST", "/api/keys", json=body)
            tenant.keys[role], tenant.key_ids[role] = created["secret"], created["id"]
        owner = tenant.keys["owner"]
        for greeting in ("Hello", "Good day"):
            self.ok("POST", "/api/prompts/push", owner, json=self.push_files(tenant.prompt, greeting))
        self.ok("POST", "/api/policies", owner, json={"content": policy_file(tenant.policy)})
        for label in ("production", "qa", "guarded", "canary", "promo"):
            self.ok("PUT", f"/api/prompts/{tenant.prompt}/labels/{label}", owner, json={"version": 1})
        chat = {"model": f"prompt:{tenant.prompt}@1", "variables": {"who": "Ada"}}
        response = self.call("POST", "/v1/chat/completions", tenant.keys["service"], json=chat)
        assert response.status_code == 200, response.text
        tenant.trace_id = response.headers["x-pilothouse-trace-id"]
        tenant.budget_id = self.new_budget(tenant)
        tenant.limit_id = self.ok(
            "POST", "/api/limits", json={"scope": "project", "subject": tenant.name, "rpm": 100_000}
        )["id"]
        self.ok("POST", "/api/tools", owner, json={"tools": [{"name": tenant.tool, "risk": "low"}]})
        self.ok("POST", "/api/evals/datasets", owner, json={"name": tenant.dataset, "items": [{"input": "q"}]})
        self.ok("POST", "/api/evals/datasets", owner, json={"name": EVAL_DATA, "items": [{"input": "q"}]})
        tenant.experiment_id = self.finished_experiment(tenant)
        self.ok("POST", "/api/evals/queues", owner, json={"name": tenant.queue, "score": QUEUE_SCORE})
        self.ok("POST", "/api/monitors/rules", owner, json={"name": tenant.drift_rule, "metric": "input_drift"})
        self.ok("POST", f"/api/evals/queues/{tenant.queue}/items", owner, json={"trace_ids": [tenant.trace_id]})
        self.ok("POST", "/api/rag/collections", owner, json={"name": tenant.collection, "index": "exact"})

    def new_budget(self, tenant: Tenant) -> str:
        body = {"scope": "user", "subject": self.unique("user"), "usd": "50", "mode": "soft", "project": tenant.name}
        budget_id: str = self.ok("POST", "/api/budgets", json=body)["id"]
        return budget_id

    def new_key(self, tenant: Tenant) -> str:
        body = {"name": self.unique("doomed"), "role": "viewer", "project": tenant.name}
        key_id: str = self.ok("POST", "/api/keys", json=body)["id"]
        return key_id

    def new_collection(self, tenant: Tenant) -> str:
        """A RAG collection of the tenant's project to delete."""
        name = self.unique(f"{tenant.name}-doomed-docs")
        self.ok("POST", "/api/rag/collections", tenant.keys["owner"], json={"name": name, "index": "exact"})
        return name

    def new_tool(self, tenant: Tenant) -> str:
        """A tool of the tenant's project to delete (registered with its owner key: tools are per project)."""
        name = self.unique(f"{tenant.name}-doomed-tool")
        self.ok("POST", "/api/tools", tenant.keys["owner"], json={"tools": [{"name": name}]})
        return name

    def new_grant(self, tenant: Tenant) -> str:
        """A grant of the tenant's tool to revoke (to an agent with a unique name)."""
        body = {"kind": "agent", "subject": self.unique("agent")}
        grant_id: str = self.ok("POST", f"/api/tools/{tenant.tool}/grants", tenant.keys["owner"], json=body)["id"]
        return grant_id

    def new_monitor_rule(self, tenant: Tenant) -> str:
        """A monitor rule of the tenant's project to remove (a name only that project has)."""
        name = self.unique(f"{tenant.name}-doomed-rule")
        self.ok("POST", "/api/monitors/rules", tenant.keys["owner"], json={"name": name, "metric": "error_rate"})
        return name

    def new_sampling_rule(self, tenant: Tenant) -> str:
        """An online evaluation rule of the tenant's project to remove."""
        name = self.unique(f"{tenant.name}-doomed-sampling")
        body = {"name": name, "rate": 0.5, "scorers": ["pii"]}
        self.ok("POST", "/api/monitors/online-eval", tenant.keys["owner"], json=body)
        return name

    def finished_experiment(self, tenant: Tenant) -> str:
        """A finished run of the tenant's dataset on the fake model."""
        started = self.ok("POST", "/api/evals/experiments", tenant.keys["owner"], json=experiment_body())
        deadline = time.monotonic() + 30
        while self.ok("GET", f"/api/evals/experiments/{started['id']}", tenant.keys["owner"])["status"] == "running":
            assert time.monotonic() < deadline, "the walk's experiment did not finish"
            time.sleep(0.05)
        experiment_id: str = started["id"]
        return experiment_id

    def failed_experiment(self, tenant: Tenant) -> str:
        """A finished run marked failed in the store, so `resume` takes it (it has nothing left to run)."""
        experiment_id = self.finished_experiment(tenant)
        store = self.http.app.api.state.pilothouse.store  # type: ignore[attr-defined]
        with store.begin() as conn:
            conn.execute(update(experiments).where(experiments.c.id == experiment_id).values(status="failed"))
        return experiment_id

    def function_experiment(self, tenant: Tenant, *, uploaded: bool = False) -> str:
        """A run of a client-side function on the tenant's data, waiting for its outputs (or with them all)."""
        body = {**experiment_body(), "variants": [{"name": "f", "function": "app.answer"}]}
        experiment_id: str = self.ok("POST", "/api/evals/experiments", tenant.keys["owner"], json=body)["id"]
        if uploaded:
            path = f"/api/evals/experiments/{experiment_id}/results"
            self.ok("POST", path, tenant.keys["owner"], json=upload_body())
        return experiment_id

    def open_task(self, tenant: Tenant) -> str:
        """The path of an open annotation task of the tenant (in a queue of its own)."""
        owner = tenant.keys["owner"]
        queue = self.unique(f"{tenant.name}-walk-queue")
        self.ok("POST", "/api/evals/queues", owner, json={"name": queue, "score": QUEUE_SCORE})
        self.ok("POST", f"/api/evals/queues/{queue}/items", owner, json={"trace_ids": [tenant.trace_id]})
        task_id = self.ok("GET", f"/api/evals/queues/{queue}/next", owner)["task"]["id"]
        return f"/api/evals/queues/{queue}/tasks/{task_id}"

    def new_limit(self, tenant: Tenant) -> str:
        body = {"scope": "model", "subject": CHAT, "rpm": 100_000, "project": tenant.name}
        limit_id: str = self.ok("POST", "/api/limits", json=body)["id"]
        return limit_id


QUEUE_SCORE = {"name": "helpful", "data_type": "boolean"}
EVAL_DATA = "walk-eval-data"
"""A dataset every tenant has under this name, for experiments started by any key of its project."""


def experiment_body() -> dict[str, Any]:
    return {
        "name": "walk-run",
        "dataset": EVAL_DATA,
        "variants": [{"name": "m", "model": CHAT}],
        "metrics": [{"name": "contains", "options": {"value": "x"}}],
    }


def upload_body() -> dict[str, Any]:
    """The function variant's output for the one item of EVAL_DATA."""
    return {"variant": "f", "results": [{"item_id": validate_items([{"input": "q"}])[0]["id"], "output": "x"}]}


def otlp_request() -> dict[str, Any]:
    """An OTLP JSON trace request with one span of a new trace: it acts in the caller's project."""
    span = {"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": "walk", "startTimeUnixNano": "1"}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def sdk_batch(w: World, t: Tenant) -> dict[str, Any]:
    """One SDK span joining the tenant's trace (the gateway wrote it; the store merges the two)."""
    now = time.time()
    span = {"trace_id": t.trace_id, "id": f"{next(w.counter) + 1:016x}", "kind": "step", "name": "app"}
    return {"spans": [{**span, "started_at": now, "ended_at": now + 0.01}]}


def policy_file(name: str) -> str:
    """A guard policy that changes nothing the walk does (embeddings only, flag only)."""
    return f"name: {name}\nscope: {{routes: [embeddings]}}\ninput:\n  - {{scanner: secrets, action: flag}}\n"


# -- how to call each route -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None


REF, PROJECT, NO_REF = "ref", "project", "no-ref"
"""What a call aimed at another project names there: an object id (refused with 404, like a missing one), the
project itself (refused with 403), or nothing (the call acts in the caller's project whatever it is aimed at:
only what it answers is checked)."""

Recipe = Callable[[World, Tenant], Call]


@dataclass(frozen=True)
class Walk:
    recipe: Recipe
    aims: str


def _prompt(path: str, method: str = "GET", **kwargs: Any) -> Walk:
    return Walk(lambda w, t: Call(method, f"/api/prompts/{t.prompt}{path}", **kwargs), REF)


RECIPES: dict[str, Walk] = {
    "GET /healthz": Walk(lambda w, t: Call("GET", "/healthz"), NO_REF),
    "GET /readyz": Walk(lambda w, t: Call("GET", "/readyz"), NO_REF),
    "GET /api/openapi.json": Walk(lambda w, t: Call("GET", "/api/openapi.json"), NO_REF),
    "GET /v1/models": Walk(lambda w, t: Call("GET", "/v1/models"), NO_REF),
    "GET /v1/models/{model_id}": Walk(lambda w, t: Call("GET", f"/v1/models/{CHAT}"), NO_REF),
    "POST /v1/chat/completions": Walk(
        lambda w, t: Call(
            "POST", "/v1/chat/completions", json={"model": f"prompt:{t.prompt}@1", "variables": {"who": "Cy"}}
        ),
        REF,
    ),
    "POST /v1/embeddings": Walk(
        lambda w, t: Call("POST", "/v1/embeddings", json={"model": EMBED, "input": "x"}), NO_REF
    ),
    "POST /api/projects": Walk(lambda w, t: Call("POST", "/api/projects", json={"name": w.unique("project")}), NO_REF),
    "GET /api/projects": Walk(lambda w, t: Call("GET", "/api/projects"), NO_REF),
    "POST /api/keys": Walk(
        lambda w, t: Call("POST", "/api/keys", json={"name": w.unique("key"), "role": "viewer", "project": t.name}),
        PROJECT,
    ),
    "GET /api/keys": Walk(lambda w, t: Call("GET", "/api/keys", params={"project": t.name}), PROJECT),
    "DELETE /api/keys/{key_id}": Walk(lambda w, t: Call("DELETE", f"/api/keys/{w.new_key(t)}"), REF),
    "POST /api/budgets": Walk(
        lambda w, t: Call(
            "POST", "/api/budgets", json={"scope": "project", "subject": t.id, "usd": "100", "mode": "soft"}
        ),
        PROJECT,
    ),
    "GET /api/budgets": Walk(lambda w, t: Call("GET", "/api/budgets", params={"project": t.id}), PROJECT),
    "DELETE /api/budgets/{budget_id}": Walk(lambda w, t: Call("DELETE", f"/api/budgets/{w.new_budget(t)}"), REF),
    "POST /api/limits": Walk(
        lambda w, t: Call("POST", "/api/limits", json={"scope": "project", "subject": t.name, "rpm": 100_000}),
        PROJECT,
    ),
    "GET /api/limits": Walk(lambda w, t: Call("GET", "/api/limits", params={"project": t.name}), PROJECT),
    "DELETE /api/limits/{limit_id}": Walk(lambda w, t: Call("DELETE", f"/api/limits/{w.new_limit(t)}"), REF),
    "GET /api/costs/report": Walk(lambda w, t: Call("GET", "/api/costs/report", params={"project": t.name}), PROJECT),
    "POST /api/costs/estimate": Walk(
        lambda w, t: Call(
            "POST",
            "/api/costs/estimate",
            json={"models": [CHAT], "prompt": f"{t.prompt}@1", "variables": {"who": "Di"}},
        ),
        REF,
    ),
    "POST /api/cache/explain": Walk(
        lambda w, t: Call(
            "POST",
            "/api/cache/explain",
            json={
                "question": "How do I reset my password?",
                "cached": "How can I reset my password?",
                "project": t.name,
            },
        ),
        PROJECT,
    ),
    "GET /api/cache/threshold": Walk(
        lambda w, t: Call("GET", "/api/cache/threshold", params={"project": t.name}), PROJECT
    ),
    "PUT /api/cache/threshold": Walk(
        lambda w, t: Call("PUT", "/api/cache/threshold", json={"threshold": 0.93, "project": t.name}), PROJECT
    ),
    "DELETE /api/cache/threshold": Walk(
        lambda w, t: Call("DELETE", "/api/cache/threshold", params={"project": t.name}), PROJECT
    ),
    "GET /api/projects/capture": Walk(
        lambda w, t: Call("GET", "/api/projects/capture", params={"project": t.name}), PROJECT
    ),
    "PUT /api/projects/capture": Walk(
        lambda w, t: Call("PUT", "/api/projects/capture", json={"mode": "full", "project": t.name}), PROJECT
    ),
    "GET /api/audit": Walk(lambda w, t: Call("GET", "/api/audit", params={"project": t.name}), PROJECT),
    "GET /api/audit/verify": Walk(lambda w, t: Call("GET", "/api/audit/verify"), NO_REF),
    "GET /api/audit/checkpoints": Walk(lambda w, t: Call("GET", "/api/audit/checkpoints"), NO_REF),
    "POST /api/audit/checkpoints": Walk(lambda w, t: Call("POST", "/api/audit/checkpoints"), NO_REF),
    "GET /api/audit/public-key": Walk(lambda w, t: Call("GET", "/api/audit/public-key"), NO_REF),
    "GET /api/traces": Walk(lambda w, t: Call("GET", "/api/traces"), NO_REF),
    "GET /api/traces/{trace_id}": Walk(lambda w, t: Call("GET", f"/api/traces/{t.trace_id}"), REF),
    "GET /api/traces/{trace_id}/explain": Walk(lambda w, t: Call("GET", f"/api/traces/{t.trace_id}/explain"), REF),
    "POST /api/scores": Walk(
        lambda w, t: Call("POST", "/api/scores", json={"trace_id": t.trace_id, "name": "helpful", "value": 1}), REF
    ),
    "GET /api/scores": Walk(lambda w, t: Call("GET", "/api/scores", params={"trace_id": t.trace_id}), NO_REF),
    "POST /api/feedback": Walk(
        lambda w, t: Call("POST", "/api/feedback", json={"trace_id": t.trace_id, "thumbs": "up"}), REF
    ),
    "POST /api/ingest/spans": Walk(lambda w, t: Call("POST", "/api/ingest/spans", json=sdk_batch(w, t)), REF),
    "POST /v1/traces": Walk(lambda w, t: Call("POST", "/v1/traces", json=otlp_request()), NO_REF),
    "GET /api/prompts": Walk(lambda w, t: Call("GET", "/api/prompts"), NO_REF),
    "POST /api/policies": Walk(
        lambda w, t: Call("POST", "/api/policies", json={"content": policy_file("walk-policy")}), NO_REF
    ),
    "GET /api/policies": Walk(lambda w, t: Call("GET", "/api/policies"), NO_REF),
    "GET /api/policies/{name}": Walk(lambda w, t: Call("GET", f"/api/policies/{t.policy}"), REF),
    "GET /api/policies/{name}/versions": Walk(lambda w, t: Call("GET", f"/api/policies/{t.policy}/versions"), REF),
    "GET /api/policies/{name}/shadow": Walk(lambda w, t: Call("GET", f"/api/policies/{t.policy}/shadow"), REF),
    "POST /api/policies/{name}/disable": Walk(lambda w, t: Call("POST", f"/api/policies/{t.policy}/disable"), REF),
    # a push names a prompt of the caller's project, whatever project it is aimed at: one name for all of them
    "POST /api/prompts/push": Walk(
        lambda w, t: Call("POST", "/api/prompts/push", json=w.push_files(PUSHED, "Hi")), NO_REF
    ),
    "POST /api/prompts/pull": Walk(lambda w, t: Call("POST", "/api/prompts/pull", json={"latest": True}), NO_REF),
    "POST /api/prompts/{name}/versions": Walk(
        lambda w, t: Call(
            "POST",
            f"/api/prompts/{PUSHED}/versions",
            json={
                "definition": {
                    "model": CHAT,
                    "variables": {"who": {"type": "string"}},
                    "messages": [{"role": "user", "content": "Hey {{ who }}"}],
                }
            },
        ),
        NO_REF,
    ),
    "GET /api/prompts/{name}": _prompt(""),
    "GET /api/prompts/{name}/versions/{ref}": _prompt("/versions/1"),
    "GET /api/prompts/{name}/diff": _prompt("/diff", params={"from": "1", "to": "2"}),
    "GET /api/prompts/{name}/labels": _prompt("/labels"),
    "PUT /api/prompts/{name}/labels/{label}": _prompt("/labels/qa", "PUT", json={"version": 2}),
    "POST /api/prompts/{name}/labels/{label}/protect": _prompt("/labels/guarded/protect", "POST"),
    "DELETE /api/prompts/{name}/labels/{label}/protect": _prompt("/labels/guarded/protect", "DELETE"),
    "PUT /api/prompts/{name}/labels/{label}/canary": _prompt(
        "/labels/canary/canary", "PUT", json={"baseline": 1, "candidate": 2, "weight": 10}
    ),
    "GET /api/prompts/{name}/labels/{label}/canary": _prompt("/labels/canary/canary"),
    "GET /api/prompts/{name}/labels/{label}/canary/status": _prompt("/labels/canary/canary/status"),
    "POST /api/prompts/{name}/labels/{label}/canary/check": _prompt("/labels/canary/canary/check", "POST"),
    "GET /api/prompts/{name}/tests": _prompt("/tests"),
    "POST /api/prompts/{name}/promote": _prompt("/promote", "POST", json={"version": 2, "to": "promo"}),
    "GET /api/prompts/{name}/stats": _prompt("/stats"),
    "GET /api/prompts/{name}/label-history": _prompt("/label-history"),
    "GET /api/prompts/{name}/tests/runs": _prompt("/tests/runs"),
    "POST /api/prompts/{name}/tests/run": _prompt("/tests/run", "POST", json={"version": 1}),
    "POST /api/prompts/{name}/render": _prompt("/render", "POST", json={"ref": "1", "variables": {"who": "Bo"}}),
    "GET /api/prompts/{name}/resolve": _prompt("/resolve", params={"ref": "1", "variables": '{"who": "Bo"}'}),
    # tools belong to the caller's project: another project's tool is a 404, as a missing one
    "POST /api/tools": Walk(
        lambda w, t: Call("POST", "/api/tools", json={"tools": [{"name": "walk-registered", "risk": "medium"}]}),
        NO_REF,
    ),
    "GET /api/tools": Walk(lambda w, t: Call("GET", "/api/tools"), NO_REF),
    "GET /api/tools/{name}": Walk(lambda w, t: Call("GET", f"/api/tools/{t.tool}"), REF),
    "DELETE /api/tools/{name}": Walk(lambda w, t: Call("DELETE", f"/api/tools/{w.new_tool(t)}"), REF),
    "POST /api/tools/{name}/grants": Walk(
        lambda w, t: Call("POST", f"/api/tools/{t.tool}/grants", json={"kind": "project"}), REF
    ),
    "DELETE /api/tools/{name}/grants/{grant_id}": Walk(
        lambda w, t: Call("DELETE", f"/api/tools/{t.tool}/grants/{w.new_grant(t)}"), REF
    ),
    "POST /api/tools/{name}/check": Walk(
        lambda w, t: Call("POST", f"/api/tools/{t.tool}/check", json={"arguments": {}}), REF
    ),
    # monitors act in the caller's project; another project's rule name is a 404, as a missing one
    "GET /api/monitors/series": Walk(
        lambda w, t: Call("GET", "/api/monitors/series", params={"metric": "error_rate"}), NO_REF
    ),
    "POST /api/monitors/rules": Walk(
        lambda w, t: Call("POST", "/api/monitors/rules", json={"name": w.unique("walk-rule"), "metric": "error_rate"}),
        NO_REF,
    ),
    "GET /api/monitors/rules": Walk(lambda w, t: Call("GET", "/api/monitors/rules"), NO_REF),
    "DELETE /api/monitors/rules/{name}": Walk(
        lambda w, t: Call("DELETE", f"/api/monitors/rules/{w.new_monitor_rule(t)}"), REF
    ),
    "PUT /api/monitors/rules/{name}/reference": Walk(
        lambda w, t: Call("PUT", f"/api/monitors/rules/{t.drift_rule}/reference", json={"trailing": True}), REF
    ),
    "GET /api/monitors/rules/{name}/drift": Walk(
        lambda w, t: Call("GET", f"/api/monitors/rules/{t.drift_rule}/drift"), REF
    ),
    "GET /api/monitors/alerts": Walk(lambda w, t: Call("GET", "/api/monitors/alerts"), NO_REF),
    "POST /api/monitors/online-eval": Walk(
        lambda w, t: Call(
            "POST",
            "/api/monitors/online-eval",
            json={"name": w.unique("walk-sampling"), "rate": 0.1, "scorers": ["pii"]},
        ),
        NO_REF,
    ),
    "GET /api/monitors/online-eval": Walk(lambda w, t: Call("GET", "/api/monitors/online-eval"), NO_REF),
    "DELETE /api/monitors/online-eval/{name}": Walk(
        lambda w, t: Call("DELETE", f"/api/monitors/online-eval/{w.new_sampling_rule(t)}"), REF
    ),
    # datasets belong to the caller's project: another project's dataset name is a 404, as a missing one
    "POST /api/evals/datasets": Walk(
        lambda w, t: Call("POST", "/api/evals/datasets", json={"name": "walk-dataset", "items": [{"input": "x"}]}),
        NO_REF,
    ),
    "GET /api/evals/datasets": Walk(lambda w, t: Call("GET", "/api/evals/datasets"), NO_REF),
    "GET /api/evals/datasets/{name}": Walk(lambda w, t: Call("GET", f"/api/evals/datasets/{t.dataset}"), REF),
    "GET /api/evals/datasets/{name}/versions": Walk(
        lambda w, t: Call("GET", f"/api/evals/datasets/{t.dataset}/versions"), REF
    ),
    "GET /api/evals/datasets/{name}/items": Walk(
        lambda w, t: Call("GET", f"/api/evals/datasets/{t.dataset}/items"), REF
    ),
    # items come from the caller's own traces, into a dataset of the caller's project, whatever it is aimed at
    "POST /api/evals/datasets/{name}/from-traces": Walk(
        lambda w, t: Call("POST", "/api/evals/datasets/walk-from-traces/from-traces", json={"limit": 1, "model": CHAT}),
        NO_REF,
    ),
    # experiments run on a dataset of the caller's project; another project's run id is a 404, as a missing one
    "POST /api/evals/experiments": Walk(
        lambda w, t: Call("POST", "/api/evals/experiments", json=experiment_body()), NO_REF
    ),
    "GET /api/evals/experiments": Walk(lambda w, t: Call("GET", "/api/evals/experiments"), NO_REF),
    "GET /api/evals/experiments/{experiment_id}": Walk(
        lambda w, t: Call("GET", f"/api/evals/experiments/{t.experiment_id}"), REF
    ),
    "GET /api/evals/experiments/{experiment_id}/results": Walk(
        lambda w, t: Call("GET", f"/api/evals/experiments/{t.experiment_id}/results"), REF
    ),
    "GET /api/evals/experiments/{experiment_id}/compare": Walk(
        lambda w, t: Call(
            "GET", f"/api/evals/experiments/{t.experiment_id}/compare", params={"baseline": "m", "candidate": "m"}
        ),
        REF,
    ),
    "POST /api/evals/experiments/{experiment_id}/results": Walk(
        lambda w, t: Call("POST", f"/api/evals/experiments/{w.function_experiment(t)}/results", json=upload_body()),
        REF,
    ),
    "POST /api/evals/experiments/{experiment_id}/finish": Walk(
        lambda w, t: Call("POST", f"/api/evals/experiments/{w.function_experiment(t, uploaded=True)}/finish"), REF
    ),
    "GET /api/evals/experiments/{experiment_id}/calibration": Walk(
        lambda w, t: Call(
            "GET",
            f"/api/evals/experiments/{t.experiment_id}/calibration",
            params={"metric": "contains", "label": "human"},
        ),
        REF,
    ),
    "GET /api/evals/history": Walk(
        lambda w, t: Call("GET", "/api/evals/history", params={"dataset": t.dataset, "metric": "contains"}), REF
    ),
    # annotation queues belong to the caller's project
    "POST /api/evals/queues": Walk(
        lambda w, t: Call("POST", "/api/evals/queues", json={"name": w.unique("walk-q"), "score": QUEUE_SCORE}),
        NO_REF,
    ),
    "GET /api/evals/queues": Walk(lambda w, t: Call("GET", "/api/evals/queues"), NO_REF),
    "POST /api/evals/queues/{name}/items": Walk(
        lambda w, t: Call("POST", f"/api/evals/queues/{t.queue}/items", json={"trace_ids": [t.trace_id]}), REF
    ),
    "GET /api/evals/queues/{name}/next": Walk(lambda w, t: Call("GET", f"/api/evals/queues/{t.queue}/next"), REF),
    "POST /api/evals/queues/{name}/tasks/{task_id}": Walk(
        lambda w, t: Call("POST", w.open_task(t), json={"value": True}), REF
    ),
    "POST /api/evals/experiments/{experiment_id}/resume": Walk(
        lambda w, t: Call("POST", f"/api/evals/experiments/{w.failed_experiment(t)}/resume"), REF
    ),
    "POST /api/evals/datasets/{name}/splits": Walk(
        lambda w, t: Call(
            "POST", f"/api/evals/datasets/{t.dataset}/splits", json={"fractions": {"train": 0.5, "test": 0.5}}
        ),
        REF,
    ),
    # RAG collections belong to the caller's project: another project's collection name is a 404
    "GET /api/rag/collections": Walk(lambda w, t: Call("GET", "/api/rag/collections"), NO_REF),
    "POST /api/rag/collections": Walk(
        lambda w, t: Call("POST", "/api/rag/collections", json={"name": w.unique("walk-docs"), "index": "exact"}),
        NO_REF,
    ),
    "GET /api/rag/collections/{name}": Walk(lambda w, t: Call("GET", f"/api/rag/collections/{t.collection}"), REF),
    "DELETE /api/rag/collections/{name}": Walk(
        lambda w, t: Call("DELETE", f"/api/rag/collections/{w.new_collection(t)}"), REF
    ),
    "GET /api/rag/collections/{name}/documents": Walk(
        lambda w, t: Call("GET", f"/api/rag/collections/{t.collection}/documents"), REF
    ),
    "GET /api/rag/collections/{name}/stale": Walk(
        lambda w, t: Call("GET", f"/api/rag/collections/{t.collection}/stale"), REF
    ),
    "POST /api/rag/collections/{name}/records": Walk(
        lambda w, t: Call(
            "POST", f"/api/rag/collections/{t.collection}/records", json={"records": [{"id": "w", "text": "Walk."}]}
        ),
        REF,
    ),
    "POST /api/rag/collections/{name}/documents": Walk(
        lambda w, t: Call(
            "POST",
            f"/api/rag/collections/{t.collection}/documents",
            json={"documents": [{"source": "walk.txt", "sections": [{"text": "Walk."}]}]},
        ),
        REF,
    ),
    "POST /api/rag/collections/{name}/reembed": Walk(
        lambda w, t: Call("POST", f"/api/rag/collections/{t.collection}/reembed", json={}), REF
    ),
    "POST /api/rag/{collection}/query": Walk(
        lambda w, t: Call("POST", f"/api/rag/{t.collection}/query", json={"query": "walk", "mode": "keyword"}), REF
    ),
    # flow runs belong to the caller's project: another project's run id is a 404, as a missing one
    "POST /api/flows/runs": Walk(lambda w, t: Call("POST", "/api/flows/runs", json=start_body()), NO_REF),
    "GET /api/flows/runs": Walk(lambda w, t: Call("GET", "/api/flows/runs"), NO_REF),
    "GET /api/flows/runs/{run_id}": Walk(lambda w, t: Call("GET", f"/api/flows/runs/{flow_run(w, t)}"), REF),
    "GET /api/flows/runs/{run_id}/path": Walk(lambda w, t: Call("GET", f"/api/flows/runs/{flow_run(w, t)}/path"), REF),
    "POST /api/flows/runs/{run_id}/approve": Walk(
        lambda w, t: Call("POST", f"/api/flows/runs/{flow_run(w, t)}/approve", json={"step": "approve"}), REF
    ),
    "POST /api/flows/runs/{run_id}/reject": Walk(
        lambda w, t: Call("POST", f"/api/flows/runs/{flow_run(w, t)}/reject", json={"step": "approve"}), REF
    ),
    "POST /api/flows/runs/{run_id}/cancel": Walk(
        lambda w, t: Call("POST", f"/api/flows/runs/{flow_run(w, t)}/cancel"), REF
    ),
    "POST /api/flows/runs/{run_id}/resume": Walk(
        lambda w, t: Call("POST", f"/api/flows/runs/{flow_run(w, t, fail=True)}/resume"), REF
    ),
    "POST /api/flows/prune": Walk(lambda w, t: Call("POST", "/api/flows/prune", json={"keep_last": 1000}), NO_REF),
    "PUT /api/flows/switches/{flow_name}": Walk(
        lambda w, t: Call("PUT", "/api/flows/switches/walk-other", json={"enabled": True}), NO_REF
    ),
}


# -- the walk -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("route-policy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PILOTHOUSE_ADMIN_KEY", OWNER_KEY)
        with TestClient(create_app(app_settings(data_dir))) as http:
            found = World(http)
            found.populate(found.a)
            found.populate(found.b)
            yield found


def _allowed(role: str | None, minimum: str) -> bool:
    if minimum == NONE:
        return True
    return role is not None and ROLES.index(role) >= ROLES.index(minimum)


def _send(world: World, call: Call, key: str | None) -> httpx.Response:
    return world.call(call.method, call.path, key, params=call.params, json=call.json)


def _label(route: str, role: str | None, aim: str, response: httpx.Response) -> str:
    return f"{route} as {role or 'no key'} of A on {aim}'s objects: {response.status_code} {response.text[:300]}"


@pytest.mark.parametrize("route", sorted(RECIPES))
def test_each_role_in_its_own_project_gets_what_the_table_says(world: World, route: str) -> None:
    policy, walk = route_table()[route], RECIPES[route]
    for role in (None, *ROLES):
        response = _send(world, walk.recipe(world, world.a), None if role is None else world.a.keys[role])
        label = _label(route, role, "A", response)
        if _allowed(role, policy.minimum):
            assert response.status_code < 300, label
            if role != "owner" or policy.scope != ANY:  # an owner lists every project, B included
                leaked = {s for s in world.b.secrets() if s in response.text}
                assert not leaked, f"{label}\nshows project B's {sorted(leaked)}"
        elif role is None:
            assert response.status_code == 401, label
        else:
            assert response.status_code == 403, label
            assert response.json()["error"]["type"] == "permission_error", label


@pytest.mark.parametrize("route", sorted(RECIPES))
def test_only_an_owner_reaches_another_project_and_only_where_the_table_says(world: World, route: str) -> None:
    policy, walk = route_table()[route], RECIPES[route]
    for role in ROLES:
        response = _send(world, walk.recipe(world, world.b), world.a.keys[role])
        label = _label(route, role, "B", response)
        if not _allowed(role, policy.minimum):
            assert response.status_code == 403, label
        elif role == "owner" and policy.scope == ANY:
            assert response.status_code < 300, label
        elif walk.aims == REF:
            assert response.status_code == 404, label
        elif walk.aims == PROJECT:
            assert response.status_code == 403, label
            assert response.json()["error"]["code"] == "cross_project_forbidden", label
        else:
            assert response.status_code < 300, label
            leaked = {s for s in world.b.secrets() if s in response.text}
            assert not leaked, f"{label}\nshows project B's {sorted(leaked)}"


OWNER_VISITS = {
    "POST /api/keys": "key.create",
    "GET /api/keys": "keys.list",
    "DELETE /api/keys/{key_id}": "key.revoke",
    "POST /api/budgets": "budget.set",
    "GET /api/budgets": "budgets.list",
    "DELETE /api/budgets/{budget_id}": "budget.delete",
    "POST /api/limits": "limits.set",
    "GET /api/limits": "limits.list",
    "DELETE /api/limits/{limit_id}": "limits.delete",
    "GET /api/costs/report": "costs.report",
    "POST /api/cache/explain": "cache.explain",
    "GET /api/cache/threshold": "cache.threshold.read",
    "PUT /api/cache/threshold": "cache.threshold.set",
    "DELETE /api/cache/threshold": "cache.threshold.clear",
    "GET /api/projects/capture": "project.capture.read",
    "PUT /api/projects/capture": "project.capture.set",
}


def test_b_is_untouched_by_as_keys_and_the_owners_visits_are_audited(world: World) -> None:
    """B's own objects are all there after the walks, no key of A but the owner appears in B's audit log, and
    each of the owner's actions in B (its visits below, and the walk's) says where it came from."""
    a, b = world.a, world.b
    for route in OWNER_VISITS:
        response = _send(world, RECIPES[route].recipe(world, b), a.keys["owner"])
        assert response.status_code < 300, _label(route, "owner", "B", response)
    budgets = world.ok("GET", "/api/budgets", params={"project": b.name})["data"]
    limits = world.ok("GET", "/api/limits", params={"project": b.name})["data"]
    assert b.budget_id in {x["id"] for x in budgets} and b.limit_id in {x["id"] for x in limits}
    keys = {k["id"]: k for k in world.ok("GET", "/api/keys", params={"project": b.name})["data"]}
    assert all(keys[key_id]["active"] for key_id in b.key_ids.values())
    assert world.ok("GET", f"/api/traces/{b.trace_id}", b.keys["viewer"])["id"] == b.trace_id

    events = world.ok("GET", "/api/audit", params={"project": b.name, "limit": 1000})["data"]
    intruders = {a.key_ids[role] for role in ROLES if role != "owner"}
    assert [e for e in events if e["actor"] in intruders] == []
    visits = [e for e in events if e["actor"] == a.key_ids["owner"]]
    assert {e["action"] for e in visits} >= set(OWNER_VISITS.values())
    for event in visits:
        assert event["project_id"] == b.id, event
        assert event["details"]["cross_project"] is True and event["details"]["actor_project"] == a.id, event
    assert world.ok("GET", "/api/audit/verify")["ok"] is True
