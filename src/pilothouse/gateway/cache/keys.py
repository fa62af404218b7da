"""Cache keys: what makes two chat requests the same question.

The exact key is the SHA-256 of a canonical JSON document (sorted keys, integral floats written as
integers) of the public model name, the messages and every parameter that changes the answer (sampling,
tools, response format, stop, max tokens, seed, ...). Fields that do not change the answer are left out:
`user`, `stream`, `stream_options`, `metadata` and the like. The project is not in the hash; it is the
namespace the key lives in.

The semantic cache compares only the last user message by meaning; everything else must match exactly, so
it hashes the rest (model, parameters, system prompt, earlier turns) into a *context hash* that names the
partition of the vector index the comparison runs in.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

KEY_VERSION = 1

# Request fields that do not change the answer: never part of a key.
NOT_IN_KEY = frozenset(
    {
        "user",
        "stream",
        "stream_options",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
        "variables",
    }
)


def _normalize(value: Any) -> Any:
    """1.0 and 1 are the same parameter value: integral floats become ints, recursively. Only where a float
    holds integers exactly (|x| <= 2**53): 1e308 stays a float, which JSON can write (a 309-digit int it cannot)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) <= 2**53 else value
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def key_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that go into a key, normalised."""
    return {k: _normalize(v) for k, v in params.items() if k not in NOT_IN_KEY}


_SEAL_DOMAIN = b"pilothouse cache seal v1\0"


def canonical_hash(document: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of `document`: keys sorted at every level."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def exact_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """The exact-cache key of a chat request (`params`: everything but model and messages)."""
    return exact_key_material(model, messages, params)[0]


def exact_key_material(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> tuple[str, bytes]:
    """The exact key, and the 32-byte key that seals the request's entry when its content may not be kept
    readable (privacy.py): a hash of the same canonical request in another domain, so it cannot be computed
    from the lookup key, only from the request."""
    document = {"v": KEY_VERSION, "model": model, "messages": messages, "params": key_params(params)}
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest(), hashlib.sha256(_SEAL_DOMAIN + canonical).digest()


def context_hash(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """Everything but the last message's content: the part a semantic hit must match exactly."""
    last = {k: v for k, v in messages[-1].items() if k != "content"}
    return canonical_hash(
        {"v": KEY_VERSION, "model": model, "context": messages[:-1], "last": last, "params": key_params(params)}
    )


def last_user_text(messages: list[dict[str, Any]]) -> str | None:
    """The text of the last message when it is a user message made of text only, else None."""
    last = messages[-1]
    if last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                return None  # an image or other part: meaning is not in the text alone
            parts.append(part["text"])
        return "\n".join(parts)
    return None


def is_sampled(params: dict[str, Any]) -> bool:
    """True when the answer is sampled: temperature above 0, or none given (the OpenAI default is 1)."""
    temperature = params.get("temperature")
    return temperature is None or float(temperature) > 0
