"""Checks that each feature is really on in a gateway before it is measured, and what it did after:

* cache: a new request sent twice reaches the upstream once (its request counter) and the second answer
  carries the gateway's cache header (Pilothouse `x-pilothouse-cache: hit`, LiteLLM `x-litellm-cache-key`);
* budget and rate limit: calls with a tiny rpm and a tiny budget (probe keys / probe model groups) are
  refused with 429 once the first call has gone through; the measured traffic has its own, huge limits.

A check that fails stops the benchmark: numbers of a gateway without its features are not worth having.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from .common import CHAT_PATH, BenchError, chat_body, log
from .processes import Server

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only: ignore proxies


def post_chat(base_url: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """POST a chat completion; its status, its headers (lower-cased names) and its body."""
    request = urllib.request.Request(base_url + CHAT_PATH, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {key}")
    try:
        with _OPENER.open(request, timeout=30.0) as response:
            return int(response.status), {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def new_body(model: str | None = None) -> dict[str, Any]:
    """The bench request with a message no earlier request had (a cache miss)."""
    body = chat_body()
    body["messages"][0]["content"] += f" (probe {uuid.uuid4().hex})"
    if model is not None:
        body["model"] = model
    return body


def check_cache(
    name: str, server: Server, key: str, upstream_count: Callable[[], int], hit_header: Callable[[dict[str, str]], bool]
) -> str:
    """The same new request twice: one upstream call, then a hit. A description of what was seen."""
    body = new_body()
    before = upstream_count()
    first, _, raw = post_chat(server.base_url, key, body)
    middle = upstream_count()
    second, headers, raw2 = post_chat(server.base_url, key, body)
    after = upstream_count()
    if first != 200 or second != 200:
        raise BenchError(
            f"{name}: cache check answered {first} and {second}: {(raw if first != 200 else raw2)[:300]!r}"
        )
    if middle - before != 1 or after != middle or not hit_header(headers):
        raise BenchError(
            f"{name}: the cache is not answering: upstream calls {middle - before} then {after - middle} "
            f"(want 1 then 0), headers of the repeat: {headers}; {server.last_output()}"
        )
    what = "repeat served from the cache (upstream calls 1 then 0, hit header present)"
    log(f"{name}: {what}")
    return what


def check_refused(
    name: str, feature: str, server: Server, key: str, model: str | None, words: tuple[str, ...], tries: int = 6
) -> str:
    """New requests until one is refused with 429 naming `feature` (any of `words`); the first must pass.

    Spend and counters may be recorded just after an answer, so a few calls 0.25 s apart are allowed.
    """
    status, _, raw = post_chat(server.base_url, key, new_body(model))
    if status != 200:
        raise BenchError(f"{name}: the first {feature} probe call answered {status}: {raw[:300]!r}")
    for attempt in range(1, tries + 1):
        time.sleep(0.25)
        status, _, raw = post_chat(server.base_url, key, new_body(model))
        text = raw.decode(errors="replace")
        if status == 429 and any(w in text.lower() for w in words):
            what = f"refused after 1 call with 429 (call {attempt + 1}): {_message(text)}"
            log(f"{name}: {feature} probe {what}")
            return what
        if status != 200:
            raise BenchError(f"{name}: {feature} probe answered {status}, not a {feature} refusal: {text[:300]}")
    raise BenchError(f"{name}: {tries + 1} calls past a tiny {feature} were not refused: the {feature} is not on")


def _message(text: str) -> str:
    try:
        error = json.loads(text).get("error", {})
        message = str(error.get("message", text)) if isinstance(error, dict) else text
    except (ValueError, AttributeError):
        message = text
    return message.strip().splitlines()[0][:200]


def upstream_count(upstream: Server) -> int:
    """How many chat completions `bench/upstream.py` has received (its GET /stats)."""
    request = urllib.request.Request(upstream.base_url + "/stats")
    try:
        with _OPENER.open(request, timeout=10.0) as response:
            return int(json.loads(response.read())["chat_completions"])
    except (OSError, ValueError, KeyError) as exc:
        raise BenchError(f"the upstream's /stats did not answer a count: {exc}") from exc
