"""Gateway-side prompt references: `model: "prompt:NAME@LABEL"` plus `variables` → a plain chat body (with the
version's `rag` object, its `query` rendered, under the call's own `rag` fields: rag/chat_options.py).

Resolution is cached per process: a label's splits for at most `ttl_s` (1 s; other replicas see a label move
within that), versions for good (they are immutable). A label change made by this process (a push, a label
move, a promotion, a canary rollback) drops the cached splits at once, so the next call uses the new version.
Requests with a plain model name never reach this module.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from pilothouse.errors import InvalidRequest, NotFound, Unprocessable
from pilothouse.prompts.registry.labels import add_label_listener, remove_label_listener
from pilothouse.prompts.registry.lookup import PromptVersion, get_label, get_version
from pilothouse.prompts.registry.refs import PromptRef, parse_model_ref
from pilothouse.prompts.registry.splits import choose_version
from pilothouse.prompts.registry.templates import (
    TemplateRenderError,
    VariableError,
    render_source,
    render_with,
    validate_variables,
)
from pilothouse.rag.chat_options import merge_options
from pilothouse.store.engine import Store
from pilothouse.tracing.model import SpanRecord, TraceRecord

# Request fields a prompt's configuration fills in when the caller did not set them.
_CONFIG_FIELDS = ("temperature", "top_p", "max_tokens", "stop", "seed", "tools", "tool_choice", "response_format")
_MAX_ENTRIES = 10_000


def render_version(
    version: PromptVersion, variables: Any, *, param: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The checked values (defaults applied) and rendered messages of `version` with the caller's `variables`;
    a bad value or a template that fails to render is a 422 naming the variable (or `param`) and the version."""
    template = version.template
    try:
        values = validate_variables(template.get("variables") or {}, variables)
        return values, render_with(template, values)
    except VariableError as exc:
        raise Unprocessable(
            f"prompt {version.name}@{version.version}: {exc.message}", param=exc.name, code="invalid_variable"
        ) from None
    except TemplateRenderError as exc:
        raise Unprocessable(
            f"prompt {version.name}@{version.version} could not be rendered: {exc.message}", param=param, code=exc.code
        ) from None


@dataclass(frozen=True, slots=True)
class ExpandedPrompt:
    """A resolved and rendered prompt reference: what the call uses, for the span."""

    ref: PromptRef
    version: PromptVersion
    variables: dict[str, Any]
    rendered: list[dict[str, Any]]

    def annotate(self, span: SpanRecord, *, capture_content: bool) -> None:
        attrs = span.attributes
        attrs["gen_ai.prompt.name"] = self.version.name
        attrs["pilothouse.prompt.version"] = self.version.version
        attrs["pilothouse.prompt.content_hash"] = self.version.content_hash
        if self.ref.label is not None:
            attrs["pilothouse.prompt.label"] = self.ref.label
        if capture_content and isinstance(span.input, dict):
            span.input["variables"] = self.variables


class PromptResolver:
    def __init__(self, store: Store, *, ttl_s: float = 1.0) -> None:
        self.store = store
        self.ttl_s = min(ttl_s, 1.0)
        self._lock = threading.Lock()
        self._splits: dict[tuple[str, str, str], tuple[float, list[dict[str, Any]]]] = {}
        self._versions: dict[tuple[str, str, int], PromptVersion] = {}
        add_label_listener(self.invalidate)

    def close(self) -> None:
        remove_label_listener(self.invalidate)

    def invalidate(self, project_id: str, prompt_name: str) -> None:
        """Forget the cached labels of one prompt (its label moved in this process)."""
        with self._lock:
            for key in [k for k in self._splits if k[0] == project_id and k[1] == prompt_name]:
                del self._splits[key]

    def _version(self, project_id: str, ref: PromptRef) -> PromptVersion:
        if ref.version is not None:
            key = (project_id, ref.name, ref.version)
            cached = self._versions.get(key)
            if cached is not None:
                return cached
        with self.store.connect() as conn:
            version = get_version(conn, project_id, ref)
        with self._lock:
            if len(self._versions) >= _MAX_ENTRIES:
                self._versions.clear()
            self._versions[(project_id, version.name, version.version)] = version
        return version

    def _label_splits(self, project_id: str, name: str, label: str) -> list[dict[str, Any]]:
        key = (project_id, name, label)
        now = time.monotonic()
        hit = self._splits.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.store.connect() as conn:
            found = get_label(conn, project_id, name, label)
            if found is None:
                get_version(conn, project_id, PromptRef(name, label=label))  # raises the NotFound
                raise AssertionError("unreachable")
        with self._lock:
            if len(self._splits) >= _MAX_ENTRIES:
                self._splits.clear()
            self._splits[key] = (now + self.ttl_s, found.splits)
        return found.splits

    def resolve(self, project_id: str, ref: PromptRef, sticky_key: str) -> PromptVersion:
        """The version one call uses (a label's canary splits applied, sticky per `sticky_key`)."""
        if ref.label is None:
            return self._version(project_id, ref)
        chosen = choose_version(self._label_splits(project_id, ref.name, ref.label), sticky_key)
        return self._version(project_id, PromptRef(ref.name, version=chosen))

    def expand(self, raw: dict[str, Any], trace: TraceRecord) -> tuple[dict[str, Any], ExpandedPrompt]:
        """The chat body to send for a prompt reference: rendered messages + the caller's, the version's
        configuration under the caller's explicit parameters. Records the version on the trace."""
        try:
            ref = parse_model_ref(str(raw["model"]))
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="model", code="invalid_prompt_ref") from None
        assert ref is not None
        user = raw.get("user")
        sticky = user if isinstance(user, str) and user else secrets.token_hex(8)
        try:
            version = self.resolve(trace.project_id, ref, sticky)
        except NotFound as exc:
            exc.param = "model"
            raise
        trace.prompt_name, trace.prompt_version = version.name, version.version
        template = version.template
        values, rendered = render_version(version, raw.get("variables"), param="model")
        extra = raw.get("messages")
        if extra is not None and not isinstance(extra, list):
            raise InvalidRequest(
                "'messages' must be a list of {role, content} objects (sent after the prompt's messages)",
                param="messages",
            )
        config = template.get("config") or {}
        model = config.get("model")
        if not model:
            raise InvalidRequest(
                f"prompt {version.name}@{version.version} has no model in its configuration: add `model: ...` "
                "to the prompt file and push it",
                param="model",
                code="prompt_without_model",
            )
        body = {k: v for k, v in raw.items() if k not in ("model", "variables", "messages")}
        body["model"] = model
        body["messages"] = [*rendered, *(extra or [])]
        for field in _CONFIG_FIELDS:
            if field not in config or body.get(field) is not None:
                continue
            if field == "max_tokens" and body.get("max_completion_tokens") is not None:
                continue
            body[field] = config[field]
        if config.get("rag") is not None:
            body["rag"] = merge_options(_prompt_rag(version, config["rag"], values), raw.get("rag"))
        return body, ExpandedPrompt(ref, version, values, rendered)


def _prompt_rag(version: PromptVersion, rag: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A version's `rag` with its `query` template rendered over the call's values (rag/chat_options.py)."""
    query = rag.get("query")
    if not isinstance(query, str):
        return rag
    try:
        return {**rag, "query": render_source(query, values, where="rag.query")}
    except TemplateRenderError as exc:
        raise Unprocessable(
            f"prompt {version.name}@{version.version} could not be rendered: {exc.message}", param="rag", code=exc.code
        ) from None
