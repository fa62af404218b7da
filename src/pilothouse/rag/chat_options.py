"""The `rag` object of a chat request or of a prompt version's configuration, and how the two combine.

A chat request may carry `rag` (docs/rag.md); so may a prompt file (docs/rag-retrieval.md, "RAG on a prompt"):
then every call of that prompt retrieves, packs and answers with citations. A call's own `rag` fields replace
the prompt's, field by field (a request's `filters` replace the prompt's `filters` whole); the result is checked
like a request's. `query` is the text to retrieve for: on a prompt, a template over the prompt's variables;
default: the last user message as sent (the prompt's rendered messages and then the caller's).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from pilothouse.errors import InvalidRequest
from pilothouse.rag.options import RetrievalOptions

MAX_QUERY_CHARS = 8_000


class ChatRagOptions(RetrievalOptions):
    """The `rag` object of a chat request (or of a prompt's configuration)."""

    collection: str = Field(min_length=1, max_length=100, description="The collection to answer from.")
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="The text to retrieve for (a prompt: a template over its variables); default: the last user "
        "message.",
    )
    max_context_tokens: int | None = Field(default=None, ge=1, le=2_000_000, description="Cap on the context.")
    answer_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Room kept for the answer (default: max_tokens or 512)."
    )
    drop_flags: list[str] = Field(
        default_factory=list, max_length=16, description="Leave out chunks carrying these flags (e.g. injection)."
    )


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"rag.{where}: {first['msg']}" if where else f"rag: {first['msg']}"


def option_error(raw: Any) -> str | None:
    """Why `raw` is not a valid `rag` object (`rag.FIELD: message`), or None when it is: the checks a request's
    `rag` gets before and at retrieval (filters, weights), for a prompt file at push time."""
    if not isinstance(raw, dict):
        return "rag: must be a mapping of retrieval options (collection, k, mode, query, filters, ...)"
    try:
        ChatRagOptions.model_validate(raw).to_query("")
    except ValidationError as exc:
        return _describe(exc)
    except InvalidRequest as exc:
        return f"rag.{exc.param}: {exc.message}" if exc.param else f"rag: {exc.message}"
    return None


def prompt_option_error(raw: Any) -> str | None:
    """Why `raw` is not a valid `rag` object for a prompt's configuration, or None: a request's checks, and no
    `identity` (retrieval runs as the caller; a service key names its end user on the call)."""
    if isinstance(raw, dict) and "identity" in raw:
        return (
            "rag.identity is not allowed in a prompt: retrieval runs as the caller (a service key names its end "
            "user with the call's own rag.identity)"
        )
    return option_error(raw)


def parse_options(raw: Any) -> ChatRagOptions:
    """The checked `rag` object; a 400 naming the first bad field."""
    try:
        return ChatRagOptions.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc), param="rag") from None


def merge_options(prompt: dict[str, Any], request: Any) -> dict[str, Any]:
    """A prompt's `rag` with the call's `rag` fields over it (None: the prompt's alone)."""
    if request is None:
        return dict(prompt)
    if not isinstance(request, dict):
        raise InvalidRequest("rag: must be an object of retrieval options", param="rag")
    return {**prompt, **request}
