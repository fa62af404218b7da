"""Schema-driven fuzzing of the whole HTTP surface: the management API and the two gateway endpoints, as the
OpenAPI document describes them (the one GET /api/openapi.json serves, built here without starting a server),
against the application in this process (fake models, SQLite in a temporary folder, the owner's admin key).

Schemathesis generates requests from the document (examples, the coverage phase's boundary, negative and
unsupported-method cases, then random ones), with a fixed seed and a bounded number per operation, and checks
each answer: no 5xx, only documented statuses, content types and bodies, `Allow` on every 405, and no request
that is valid by the document refused (400/422). A failure names the operation and a request that reproduces it.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.types import Receive, Scope, Send

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.server.app import PilothouseApp, create_app
from pilothouse.store.traces import encode_cursor
from tests.support.asgi_app import ADMIN_KEY, app_settings

POSITIVE = ["2xx", "401", "403", "404", "409", "429"]
SEED = 20240607
MAX_EXAMPLES = 25
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
CONFIG = {
    "seed": SEED,
    "output": {"sanitization": {"enabled": False}},  # the key is this test's own: show failures as sent
    "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "deterministic": True, "database": "none"},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    "checks": {
        # Operations that create things (keys, projects) are not followed by the ones that read them back.
        "use_after_free": {"enabled": False},
        "ensure_resource_availability": {"enabled": False},
        # Lenient by design: unknown gateway fields pass through to upstreams, and pydantic's lax mode takes
        # 0/1 for booleans. Invalid data must still never get a 5xx or an undocumented status.
        "negative_data_rejection": {"enabled": False},
    },
    # A pagination cursor is a token the server issued (next_cursor); a made-up one is refused by design.
    "parameters": {"query.cursor": encode_cursor(0.0, "0" * 32)},
    "operations": [
        {
            # Contents no schema can state: prompt files and definitions (the prompt-file parser and the
            # template compiler check them), and label splits and canaries (weights that sum to 100, distinct
            # versions, a rollback rule's metric).
            "include-path-regex": r"^/api/prompts/(push|\{name\}/versions|\{name\}/labels/\{label\}(/canary)?)$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "422"]}},
        },
        {
            # Tool definitions and argument rules: a valid JSON Schema of the arguments, a domain name, a
            # regular expression (tools/registry.py and tools/constraints.py check them).
            "include-path-regex": r"^/api/tools(/\{name\}/grants)?$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "422"]}},
        },
        {
            # Guard policy files (YAML): the policy loader checks their fields, scanners and scanner options.
            "include-path-regex": r"^/api/policies$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "422"]}},
        },
        {
            # Trace list filters with their own grammar, checked by store/traces.py: a score filter
            # (`groundedness<0.5`) names a score and a comparison, and full-text queries must hold a word.
            "include-path-regex": r"^/api/traces$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "422"]}},
        },
        {
            # Monitor metrics and detector settings are checked against the metric registry
            # (monitors/series.py, monitors/rules.py); SDK span batches against each other (ends after starts,
            # span ids unique, parents known: server/api/ingest.py).
            # An input_drift rule's reference window must not end in the future, and only such a rule has one.
            "include-path-regex": r"^/api/(monitors/(series|rules|rules/\{name\}/(reference|drift))|ingest/spans)$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "422"]}},
        },
        {
            # Evaluation bodies have rules across fields that the schema cannot state (a variant names exactly one
            # of prompt, model or function; a version holds at least one item; split fractions add up to 1; only
            # a categorical score has categories), name objects that must exist (a dataset, a run, a queue), and
            # online evaluation's scorers are checked against the metric registry.
            "include-path-regex": r"^/api/(evals/.*|monitors/online-eval)$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "404", "409", "422"]}},
        },
        {
            # A promotion's evaluation gate names a dataset that must exist and metrics checked against the
            # metric registry; its cost cap is a decimal whose text the document cannot constrain.
            "include-path-regex": r"^/api/prompts/\{name\}/promote$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "404", "409", "422"]}},
        },
        {
            # A flow run names a flow file or module that must load and an input its state model must accept;
            # a decision needs a run waiting at that step (flows/service.py).
            "include-path-regex": r"^/api/flows/.*$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "404", "409", "422"]}},
        },
        {
            # A RAG query's options have rules across fields (a query vector needs its embedding model and the
            # collection's dimensions; a range needs gte <= lte; filters may not name _acl: rag/options.py).
            "include-path-regex": r"^/api/rag/\{collection\}/query$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "422"]}},
        },
        {
            # RAG collections and ingestion: settings with rules across fields (overlap under half the chunk
            # size, milvus needs index_uri), records whose fields the loaders check (rag/loaders/jsonl.py).
            "include-path-regex": r"^/api/rag/collections.*$",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "422"]}},
        },
        {
            # OTLP bodies are protobuf (or OTLP JSON): tests/otel drives them with a real OpenTelemetry exporter.
            "include-path-regex": r"^/v1/traces$",
            "enabled": False,
        },
        {
            # GET /api/prompts/push and /pull are served: they read the prompts named "push" and "pull"
            # (GET /api/prompts/{name}), so Allow rightly names GET where the document lists only POST.
            "include-path-regex": r"^/api/prompts/(push|pull)$",
            "checks": {"allow_header_conformance": {"enabled": False}},
        },
    ],
}
MODELS = [
    ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake")]),
    ModelEntry(name="fake-embed", kind="embedding", deployments=[Deployment(provider="fake", model="fake")]),
]


class _Served:
    """The ASGI application schemathesis calls. It ends the application's lifespan after each operation's test
    and starts it again for the next, so each lifespan gets a fresh application on the module's database (a
    server process runs one lifespan). The document is read at collection time: it needs no running state."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.app: PilothouseApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.settings is not None, "the `served` fixture sets up the application"
        if scope["type"] == "lifespan" or self.app is None:
            self.app = create_app(self.settings)
        await self.app(scope, receive, send)


SERVED = _Served()
DOCUMENT = create_app(app_settings(Path("not-started"), MODELS)).api.openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(CONFIG))
schema.app = SERVED


@pytest.fixture(scope="module")
def served() -> Iterator[None]:
    """The application's settings: SQLite in a temporary folder that lasts until the module ends."""
    with tempfile.TemporaryDirectory(prefix="pilothouse-fuzz-") as data_dir, pytest.MonkeyPatch.context() as env:
        env.setenv("PILOTHOUSE_ADMIN_KEY", ADMIN_KEY)
        SERVED.settings = app_settings(Path(data_dir), MODELS)
        try:
            yield
        finally:
            asgi.shutdown_lifespans()  # closes the store and the trace writer before the folder goes
            SERVED.settings = SERVED.app = None


INT64 = 2**63


def _unholdable_number(value: Any) -> bool:
    """Whether a generated body holds a number no store or encoder can hold (past 64 bits, or not finite)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, float):
            if not math.isfinite(node):
                return True
        elif isinstance(node, int) and not isinstance(node, bool) and not -INT64 <= node < INT64:
            return True
    return False


def accepts_valid_data(ctx: Any, response: Any, case: schemathesis.Case[Any]) -> bool | None:
    """Schemathesis' positive-data check, except for the one limit a JSON Schema cannot state for free-form
    values (`variables`, definitions): the server refuses integers past 64 bits with a 400 naming the value
    (server/body_guard.py). Only that exact refusal, for a body that really holds such a number, passes."""
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code == 400 and _unholdable_number(case.body):
        error = response.json().get("error", {})
        assert error.get("code") == "json_number_out_of_range", response.text
        return None
    return positive_data_acceptance(ctx, response, case)  # type: ignore[no-any-return]


@schema.parametrize()
def test_api_conforms_to_its_description(case: schemathesis.Case[Any], served: None) -> None:
    case.call_and_validate(
        headers=AUTH, additional_checks=[accepts_valid_data], excluded_checks=[positive_data_acceptance]
    )
