"""The OpenAPI description of the two gateway endpoints that bypass FastAPI (server/gateway_asgi.py).

FastAPI cannot see POST /v1/chat/completions and POST /v1/embeddings, so their path items are written here
and added to the generated document (server/openapi.py). The request schemas state what
gateway/validation.py enforces, never less: a body valid by them is one the gateway accepts (fields it passes
through to OpenAI-compatible upstreams are allowed as extra properties).
"""

from __future__ import annotations

from typing import Any

from pilothouse.gateway.validation import MAX_TOKENS_LIMIT, ROLES
from pilothouse.prompts.registry.refs import LABEL_RE, MAX_VERSION, MODEL_PREFIX, NAME_PATTERN

# What follows `NAME@` in a prompt reference: a version (digits enough to stay within MAX_VERSION), a label,
# or sha: and a hash prefix.
SELECTOR = rf"([1-9][0-9]{{0,{len(str(MAX_VERSION)) - 2}}}|{LABEL_RE.pattern[1:-1]}|sha:[0-9a-fA-F]{{6,64}})"
PROMPT_REF = rf"{NAME_PATTERN}(@{SELECTOR})?"

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
CHAT_REQUEST_REF = "#/components/schemas/ChatCompletionRequest"
EMBEDDINGS_REQUEST_REF = "#/components/schemas/EmbeddingsRequest"
INT64_MAX = 2**63 - 1
_INT64 = {"type": "integer", "minimum": -(2**63), "maximum": INT64_MAX}
_POSITIVE_INT = {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS_LIMIT}

_CONTENT_PART: dict[str, Any] = {
    "type": "object",
    "description": "A content part: {type: text, text}, {type: image_url, image_url}, ...",
    "required": ["type"],
    "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
}
_CONTENT: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": _CONTENT_PART}],
    "description": "Text, or a list of content parts.",
}
_TOOL_CALL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string", "minLength": 1}, "arguments": {"type": "string"}},
        },
    },
}
_SPEAKING_ROLES = sorted(ROLES - {"assistant", "tool"})
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "description": "A chat message. `content` may be null only on an assistant message with `tool_calls`.",
    "anyOf": [
        {
            "required": ["role", "content"],
            "properties": {"role": {"enum": _SPEAKING_ROLES}, "content": _CONTENT, "name": {"type": "string"}},
        },
        {
            "required": ["role", "content"],
            "properties": {
                "role": {"const": "assistant"},
                "content": _CONTENT,
                "tool_calls": {"type": "array", "items": _TOOL_CALL},
            },
        },
        {
            "required": ["role", "tool_calls"],
            "properties": {
                "role": {"const": "assistant"},
                "content": {"type": "null"},
                "tool_calls": {"type": "array", "minItems": 1, "items": _TOOL_CALL},
            },
        },
        {
            "required": ["role", "content", "tool_call_id"],
            "properties": {
                "role": {"const": "tool"},
                "content": _CONTENT,
                "tool_call_id": {"type": "string", "minLength": 1},
            },
        },
    ],
}
_TOOL: dict[str, Any] = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "description": {"type": "string"},
                "parameters": {"type": "object", "description": "A JSON Schema of the arguments."},
            },
        },
    },
}

CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "An OpenAI chat-completions body. Fields not listed here are passed through to "
    'OpenAI-compatible upstreams untouched. With `model: "prompt:NAME@LABEL"` the messages come from the '
    "prompt (given `messages` are added after them) and `variables` fill its template.",
    "required": ["model", "messages"],
    "properties": {
        "model": {
            "type": "string",
            "minLength": 1,
            "anyOf": [{"not": {"pattern": f"^{MODEL_PREFIX}"}}, {"pattern": f"^{MODEL_PREFIX}{PROMPT_REF}$"}],
            "description": "A chat model from GET /v1/models, or prompt:NAME[@VERSION|@LABEL|@sha:HASH].",
        },
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": "boolean", "default": False},
        "stream_options": {
            "type": "object",
            "properties": {"include_usage": {"type": "boolean", "description": "Send a final usage chunk."}},
        },
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "max_tokens": _POSITIVE_INT,
        "max_completion_tokens": _POSITIVE_INT,
        "n": {"type": "integer", "minimum": 1, "maximum": 1, "description": "Only 1 is supported."},
        "seed": _INT64,
        "stop": {
            "anyOf": [{"type": "string"}, {"type": "array", "maxItems": 4, "items": {"type": "string"}}],
        },
        "tools": {"type": "array", "items": _TOOL},
        "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]},
        "response_format": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}},
        },
        "user": {"type": "string", "description": "The end user, recorded on the trace."},
        "variables": {"type": "object", "description": "Template variables of a prompt reference."},
    },
}

EMBEDDINGS_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "An OpenAI embeddings body. `dimensions` and token-id input are not supported.",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1, "description": "An embedding model from GET /v1/models."},
        "input": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "maxItems": 2048, "items": {"type": "string", "minLength": 1}},
            ]
        },
        "encoding_format": {"enum": ["float", "base64"], "default": "float"},
        "user": {"type": "string"},
    },
}

_USAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
}
CHAT_COMPLETION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object"}},
        "usage": _USAGE,
    },
}
EMBEDDINGS: dict[str, Any] = {
    "type": "object",
    "required": ["object", "data", "model", "usage"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["object", "index", "embedding"],
                "properties": {
                    "object": {"const": "embedding"},
                    "index": {"type": "integer"},
                    "embedding": {
                        "anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string"}],
                        "description": "Floats, or base64 of little-endian float32 with encoding_format=base64.",
                    },
                },
            },
        },
        "model": {"type": "string"},
        "usage": _USAGE,
    },
}

TRACE_HEADER = {
    "x-pilothouse-trace-id": {"description": "The request's trace id.", "schema": {"type": "string"}},
}
_ERRORS = {
    400: "Invalid body (malformed, too deeply nested, a bad field): error.message says what to fix.",
    401: "Missing, malformed or revoked API key.",
    403: "The key's role may not call models.",
    404: "No such model, or no such prompt, version or label in a prompt reference.",
    408: "The body did not arrive within body_read_timeout_s.",
    413: "The body is larger than max_body_bytes.",
    422: "A prompt reference's variables do not fit its template, or it failed to render.",
    429: "A rate limit, budget or run limit was reached (Retry-After says when to retry), or the upstream's.",
    502: "The upstream failed or refused the deployment's key.",
    503: "No deployment of the model is available (all are failing or cooling down), or budgets and limits "
    "apply and their limit store (Redis) cannot be reached (`limits_unavailable`, Retry-After: 1).",
    504: "The upstream timed out.",
}


def _responses(success: dict[str, Any], statuses: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"200": success}
    for status in statuses:
        out[str(status)] = {
            "description": _ERRORS[status],
            "headers": TRACE_HEADER,
            "content": {"application/json": {"schema": ERROR_REF}},
        }
    return out


def gateway_schemas() -> dict[str, Any]:
    """The request bodies, as named components (the cost estimate's `requests` are chat bodies too)."""
    return {"ChatCompletionRequest": CHAT_REQUEST, "EmbeddingsRequest": EMBEDDINGS_REQUEST}


def gateway_paths(extra_errors: tuple[int, ...] = ()) -> dict[str, Any]:
    """Path items of POST /v1/chat/completions and POST /v1/embeddings (`extra_errors`: statuses that every
    request can get from the server around them, such as a request-read timeout)."""
    chat_errors = tuple(sorted({400, 401, 403, 404, 413, 422, 429, 502, 503, 504, *extra_errors}))
    embedding_errors = tuple(sorted({400, 401, 403, 404, 413, 502, 503, 504, *extra_errors}))
    chat_ok = {
        "description": "The completion; with `stream: true`, server-sent events of chat.completion.chunk objects "
        "ending in `data: [DONE]` (a failure after the first event arrives as an event with an `error` object).",
        "headers": TRACE_HEADER,
        "content": {
            "application/json": {"schema": CHAT_COMPLETION},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
    embeddings_ok = {
        "description": "One embedding per input, in order.",
        "headers": TRACE_HEADER,
        "content": {"application/json": {"schema": EMBEDDINGS}},
    }
    return {
        "/v1/chat/completions": {
            "post": {
                "tags": ["gateway"],
                "summary": "Chat completion (OpenAI-compatible)",
                "operationId": "chat_completions_v1_chat_completions_post",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": CHAT_REQUEST_REF}}},
                },
                "responses": _responses(chat_ok, chat_errors),
            }
        },
        "/v1/embeddings": {
            "post": {
                "tags": ["gateway"],
                "summary": "Embeddings (OpenAI-compatible)",
                "operationId": "embeddings_v1_embeddings_post",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": EMBEDDINGS_REQUEST_REF}}},
                },
                "responses": _responses(embeddings_ok, embedding_errors),
            }
        },
    }
