"""Render previews: the messages a stored version renders to with given variables; no model is called.

What POST /api/prompts/{name}/render and GET .../resolve answer (and `pilothouse prompt render`). A bad
variable or a template that fails to render is Unprocessable (422), as the same call through the gateway is.
"""

from __future__ import annotations

from typing import Any

from pilothouse.errors import Unprocessable
from pilothouse.prompts.registry.lookup import get_version_row
from pilothouse.prompts.registry.refs import PromptRef
from pilothouse.prompts.registry.templates import TemplateRenderError, VariableError, render_with, validate_variables
from pilothouse.store.engine import Store


def render_preview(store: Store, project_id: str, ref: PromptRef, variables: Any) -> dict[str, Any]:
    """The version `ref` names, rendered with `variables` (checked against its declared variables). The
    connection is given back before rendering, which may take up to the sandbox's time budget."""
    with store.connect() as conn:
        prompt, row = get_version_row(conn, project_id, ref)
    try:
        values = validate_variables(row.template.get("variables") or {}, variables)
        messages = render_with(row.template, values)
    except VariableError as exc:
        raise Unprocessable(exc.message, param=exc.name, code="invalid_variable") from None
    except TemplateRenderError as exc:
        raise Unprocessable(exc.message, code=exc.code) from None
    return {
        "name": prompt.name,
        "version": row.version,
        "content_hash": row.content_hash,
        "messages": messages,
        "config": row.template.get("config") or {},
        "variables": values,
    }
