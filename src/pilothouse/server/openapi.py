"""The OpenAPI document (GET /api/openapi.json): what FastAPI derives from the routes, plus what it cannot see.

* Error responses: every error has one body, `{"error": {"message", "type", "param", "code"}}` (`ErrorBody`).
  `error_responses(...)` declares statuses with it; app.py gives each router the ones its routes can answer
  at `include_router` time, so no route repeats them.
* Authentication: a bearer API key on every route but the health checks (`security`), instead of an
  `authorization` header parameter.
* The two gateway endpoints served as plain ASGI (server/gateway_schema.py).
* The constraints routes check in code rather than through FastAPI (prompt names and references, time
  windows, JSON-valued query parameters, "exactly one of" bodies), stated on the parameters and bodies
  (`PARAMETERS`, `BODIES`), from the constants the checks use. A request valid by the document is then one
  the route accepts, short of what only the store can tell (an unknown prompt: 404).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.costs.report import GROUP_BY
from pilothouse.prompts.registry.refs import LABEL_MAX, LABEL_RE, MAX_VERSION, MODEL_PREFIX, NAME_MAX, NAME_PATTERN
from pilothouse.server.api.audit import MAX_ACTIONS
from pilothouse.server.gateway_schema import CHAT_REQUEST_REF, PROMPT_REF, SELECTOR, gateway_paths, gateway_schemas

DESCRIPTIONS = {
    400: "Invalid request: error.message says what to fix, error.param names the field.",
    401: "Missing, malformed or revoked API key.",
    403: "The key's role may not do this.",
    404: "No such resource in the key's project.",
    405: "Method not allowed; the Allow header lists the methods the path supports.",
    408: "The request body did not arrive in time.",
    409: "Conflict with the current state (changed concurrently, already exists, or a gate refused it).",
    413: "The request body is too large.",
    422: "The request does not match the schema, or its content cannot be processed.",
    429: "Too many requests: a rate limit or budget was reached.",
    503: "Unavailable: a service the request needs (Redis, for budgets and limits) cannot be reached; retry.",
}
# Every authenticated route: a key is needed, its role is checked, its input is validated.
AUTHENTICATED = (401, 403, 422)
# Every request with a body passes the body guard (server/body_guard.py) first: too deep, too slow, too large.
BODY_GUARD = (400, 408, 413)
BODYLESS = frozenset({"get", "head", "options"})
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
SECURITY_SCHEME = "apiKey"


_NAME = {"pattern": f"^{NAME_PATTERN}$", "maxLength": NAME_MAX}
_LABEL = {"pattern": LABEL_RE.pattern, "maxLength": LABEL_MAX}
_SELECTOR = {
    "pattern": f"^{SELECTOR}$",
    "maxLength": LABEL_MAX,
    "description": "A version number, a label, or sha: and at least 6 hex digits of a content hash.",
}
# Times as the routes parse them: epoch seconds or an ISO 8601 date or time (days up to 28 are valid in every
# month), and for reports also a duration before now. The routes accept more spellings than these.
_EPOCH = r"-?[0-9]{1,10}(\.[0-9]{1,6})?"
_ISO = (
    r"[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])?)?"
)
_DURATION = r"[0-9]{1,6}(\.[0-9]{1,3})?[smhdw]"
_REF = {
    "pattern": f"^{PROMPT_REF}$",
    "description": "NAME, NAME@VERSION, NAME@LABEL or NAME@sha:HASH (a bare name is its production label).",
}
_TIME = {"pattern": f"^({_EPOCH}|{_ISO})$", "description": "Epoch seconds or ISO 8601."}
_WHEN = {
    "pattern": f"^({_DURATION}|{_EPOCH}|{_ISO})$",
    "description": "A duration before now (90s, 30m, 24h, 7d, 2w), epoch seconds or ISO 8601.",
}
_JSON_OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}}

# (path prefix, location, parameter name) -> what the route's own check requires of it.
PARAMETERS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("/api/prompts/{name}", "path", "name", _NAME),
    ("/api/prompts/{name}/labels/{label}", "path", "label", _LABEL),
    ("/api/prompts/{name}/versions/{ref}", "path", "ref", _SELECTOR),
    ("/api/prompts/{name}/diff", "query", "from", _SELECTOR),
    ("/api/prompts/{name}/diff", "query", "to", _SELECTOR),
    ("/api/prompts/{name}/resolve", "query", "ref", _SELECTOR),
    ("/api/prompts/{name}/resolve", "query", "variables", _JSON_OBJECT),
    ("/api/prompts/{name}/stats", "query", "since", _WHEN),
    ("/api/prompts/{name}/stats", "query", "until", _WHEN),
    ("/api/audit", "query", "since", _WHEN),
    ("/api/audit", "query", "until", _WHEN),
    ("/api/audit", "query", "action", {"maxItems": MAX_ACTIONS}),
    ("/api/traces", "query", "since", _TIME),
    ("/api/traces", "query", "until", _TIME),
    ("/api/policies/{name}/shadow", "query", "since", _WHEN),
    ("/api/costs/report", "query", "since", _WHEN),
    ("/api/costs/report", "query", "until", _WHEN),
    ("/api/costs/report", "query", "by", {"enum": list(GROUP_BY)}),
)


def _exactly_one(first: str, second: str, first_type: str, second_type: str) -> dict[str, Any]:
    """Exactly one of two nullable fields set (a model validator's rule)."""
    return {
        "oneOf": [
            {"required": [first], "properties": {first: {"type": first_type}, second: {"type": "null"}}},
            {"required": [second], "properties": {second: {"type": second_type}, first: {"type": "null"}}},
        ]
    }


def _project_only_for(*scopes: str) -> dict[str, Any]:
    """`project` may be given only with these scopes (the others take the project of their subject)."""
    return {
        "anyOf": [
            {"properties": {"scope": {"enum": list(scopes)}}},
            {"properties": {"project": {"type": "null"}}},
        ]
    }


_SPLIT = {
    "type": "object",
    "required": ["version", "weight"],
    "properties": {
        "version": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
        "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
    },
}
_USD = r"^[0-8]?[0-9]{1,6}(\.[0-9]{1,12})?$"  # a decimal string within the budget's 0 to 9,000,000 USD

# A chat body naming a model itself: prompt references are not expanded in a cost estimate's requests.
_PLAIN_CHAT_BODY = {
    "allOf": [{"$ref": CHAT_REQUEST_REF}, {"properties": {"model": {"not": {"pattern": f"^{MODEL_PREFIX}"}}}}]
}

# A score: a number or true/false (numeric, or boolean when a boolean), 0/1/true/false as a boolean, or a category.
_SCORE = {
    "oneOf": [
        {
            "required": ["value"],
            "properties": {
                "value": {"type": ["number", "boolean"]},
                "string_value": {"type": "null"},
                "data_type": {"enum": ["numeric", None]},
            },
        },
        {
            "required": ["value", "data_type"],
            "properties": {
                "value": {"enum": [0, 1, True, False]},
                "string_value": {"type": "null"},
                "data_type": {"const": "boolean"},
            },
        },
        {
            "required": ["string_value"],
            "properties": {
                "string_value": {"type": "string"},
                "value": {"type": "null"},
                "data_type": {"enum": ["categorical", None]},
            },
        },
    ]
}

# Body schema name -> keywords added to it, and constraints added to its properties.
BODIES: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {
    "LabelBody": (
        _exactly_one("version", "splits", "integer", "array"),
        {"splits": {"anyOf": [{"type": "array", "minItems": 1, "items": _SPLIT}, {"type": "null"}]}},
    ),
    "ScoreCreate": (_SCORE, {}),
    "PromoteBody": ({}, {"to": _LABEL}),
    "PullBody": (
        {
            "anyOf": [
                {"required": ["latest"], "properties": {"latest": {"const": True}}},
                {"properties": {"label": {"type": "string", "minLength": 1}}},
            ]
        },
        {},
    ),
    "RenderBody": ({}, {"ref": _SELECTOR}),
    "BudgetSet": (
        _project_only_for("user", "prompt"),
        {
            "usd": {
                "anyOf": [{"type": "number", "minimum": 0, "maximum": 9_000_000}, {"type": "string", "pattern": _USD}]
            }
        },
    ),
    "LimitSet": (
        {
            "allOf": [
                _project_only_for("model"),
                {
                    "anyOf": [
                        {"required": [n], "properties": {n: {"type": "integer"}}} for n in ("rpm", "tpm", "max_tokens")
                    ]
                },
            ]
        },
        {},
    ),
    "EstimateBody": (
        {
            "oneOf": [
                {"required": ["prompt"], "properties": {"prompt": {"type": "string"}, "requests": {"type": "null"}}},
                {
                    "required": ["requests"],
                    "properties": {
                        "requests": {"type": "array", "minItems": 1, "items": _PLAIN_CHAT_BODY},
                        "prompt": {"type": "null"},
                        "n": {"const": 1},
                    },
                },
            ]
        },
        {"prompt": {"anyOf": [{"type": "string", **_REF}, {"type": "null"}]}},
    ),
}


def _constrain(schema: dict[str, Any]) -> None:
    """Apply PARAMETERS and BODIES; a rule that matches nothing (a route renamed its parameter) is an error."""
    unused = set(range(len(PARAMETERS)))
    for path, item in schema["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", ()):
                for index, (prefix, where, name, rule) in enumerate(PARAMETERS):
                    if parameter["in"] == where and parameter["name"] == name and path.startswith(prefix):
                        unused.discard(index)
                        if "content" in rule:
                            parameter.pop("schema", None)
                            parameter.update(rule)
                        else:
                            parameter["schema"].update(rule)
    if unused:
        raise RuntimeError(f"OpenAPI parameter rules match no route: {[PARAMETERS[i][:3] for i in sorted(unused)]}")
    components = schema["components"]["schemas"]
    for model, (keywords, properties) in BODIES.items():
        body = components[model]
        body.update(keywords)
        for name, rule in properties.items():
            body["properties"][name].update(rule)


class ErrorDetail(BaseModel):
    """What went wrong, in the OpenAI error shape."""

    model_config = ConfigDict(title="ErrorDetail")

    message: str = Field(description="What went wrong and what to do about it.")
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, ...")
    param: str | None = Field(description="The parameter at fault, when there is one.")
    code: str | None = Field(description="A stable machine-readable code, when there is one.")


class ErrorBody(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(title="ErrorBody")

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries declaring `statuses` with the error body."""
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS[status]} for status in sorted(set(statuses))}


def _declared(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def install(api: FastAPI) -> None:
    """Make `api.openapi()` build the full document once: the routes', the gateway's, the body guard's
    statuses on every operation that takes a body, and the security."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        schema = get_openapi(
            title=api.title,
            version=api.version,
            description="Pilothouse: an OpenAI-compatible LLM gateway (/v1) with tracing, prompts, budgets "
            "and cost reports (/api). Send an API key as `Authorization: Bearer <key>`.",
            routes=api.routes,
        )
        schema["paths"].update(gateway_paths(BODY_GUARD))
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for fastapi_only in ("HTTPValidationError", "ValidationError"):
            schemas.pop(fastapi_only, None)
        schemas.update(gateway_schemas())
        for model in (ErrorDetail, ErrorBody):
            if model.__name__ not in schemas:
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(body.pop("$defs", {}))
                schemas[model.__name__] = body
        _constrain(schema)
        components["securitySchemes"] = {
            SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "description": "A Pilothouse API key."}
        }
        guard = {str(status): _declared(status) for status in BODY_GUARD}
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                responses = operation["responses"]
                if method not in BODYLESS:
                    responses = operation["responses"] = {**guard, **responses}
                if "422" in responses:  # FastAPI's own validation-error shape is not the one the server sends
                    responses["422"] = _declared(422)
                if path not in HEALTH_PATHS:
                    operation["security"] = [{SECURITY_SCHEME: []}]
        api.openapi_schema = schema
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
