"""Loop guards: caps on a whole run of calls (an agent's task), named by the `x-pilothouse-run-id` header.

A run may make at most `run_max_calls` calls, use `run_max_tokens` tokens and spend `run_max_cost_usd`
(settings; the headers `x-pilothouse-run-max-calls`, `-max-tokens` and `-max-cost-usd` may only lower them),
and repeat one identical call (same canonical request hash) at most `run_max_repeats` times. Run counters
live in the LimitStore under the project, and expire `run_ttl_s` after the run's last call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import orjson

from pilothouse.config import LimitSettings
from pilothouse.errors import InvalidRequest, RateLimited
from pilothouse.gateway.limits.store import CounterSpec, Refusal
from pilothouse.gateway.limits.worst_case import WorstCase
from pilothouse.gateway.validation import ChatBody
from pilothouse.money import to_pico, usd

RUN_PREFIX = b"x-pilothouse-run-"
RUN_ID = b"x-pilothouse-run-id"
_CAPS = {
    b"x-pilothouse-run-max-calls": "calls",
    b"x-pilothouse-run-max-tokens": "tokens",
    b"x-pilothouse-run-max-cost-usd": "cost",
}
_UNHASHED = ("user", "stream", "stream_options")
Kind = Literal["calls", "tokens", "cost", "repeats"]


@dataclass(frozen=True, slots=True)
class RunCaps:
    run_id: str
    calls: int | None
    tokens: int | None
    cost_pico: int | None
    repeats: int | None


@dataclass(frozen=True, slots=True)
class RunCheck:
    spec: CounterSpec
    kind: Kind
    caps: RunCaps


def _positive_int(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise InvalidRequest(f"header {name} must be a positive integer, got {value!r}", code="invalid_run_header")
    return int(value)


def _lower(default: int | None, asked: int | None) -> int | None:
    if asked is None:
        return default
    return asked if default is None else min(default, asked)


def run_caps(settings: LimitSettings, headers: list[tuple[bytes, bytes]]) -> RunCaps | None:
    """The run this request belongs to and its caps, or None when it names no run."""
    run_id: str | None = None
    asked: dict[str, str] = {}
    for name, value in headers:
        if name.startswith(RUN_PREFIX):
            if name == RUN_ID:
                run_id = value.decode("latin-1").strip()
            elif name in _CAPS:
                asked[_CAPS[name]] = value.decode("latin-1").strip()
    if run_id is None:
        if asked:
            raise InvalidRequest(
                "x-pilothouse-run-max-* headers need an x-pilothouse-run-id", code="invalid_run_header"
            )
        return None
    if not 1 <= len(run_id) <= 200:
        raise InvalidRequest("x-pilothouse-run-id must be 1 to 200 characters", code="invalid_run_header")
    calls = _positive_int("x-pilothouse-run-max-calls", asked["calls"]) if "calls" in asked else None
    tokens = _positive_int("x-pilothouse-run-max-tokens", asked["tokens"]) if "tokens" in asked else None
    cost: int | None = None
    if "cost" in asked:
        try:
            cost_usd = Decimal(asked["cost"])
        except InvalidOperation:
            cost_usd = Decimal(-1)
        if not cost_usd.is_finite() or cost_usd < 0:
            raise InvalidRequest(
                f"header x-pilothouse-run-max-cost-usd must be a non-negative number, got {asked['cost']!r}",
                code="invalid_run_header",
            )
        cost = to_pico(cost_usd)
    default_cost = None if settings.run_max_cost_usd is None else to_pico(settings.run_max_cost_usd)
    return RunCaps(
        run_id=run_id,
        calls=_lower(settings.run_max_calls, calls),
        tokens=_lower(settings.run_max_tokens, tokens),
        cost_pico=_lower(default_cost, cost),
        repeats=settings.run_max_repeats,
    )


def chat_call(body: ChatBody) -> dict[str, Any]:
    """A chat call as the loop guard hashes it: model, messages and every parameter that shapes the answer."""
    params = {k: v for k, v in body.params.items() if k not in _UNHASHED}
    return {"model": body.model, "messages": body.messages, "params": params}


def request_hash(body: ChatBody) -> str:
    """The canonical hash of a chat call (`chat_call`)."""
    return call_hash(chat_call(body))


def call_hash(call: dict[str, Any]) -> str:
    """The canonical hash of a call (chat or embeddings).

    orjson writes it; what orjson refuses (integers past 64 bits, nesting past its limit, which the server's
    `max_json_depth` keeps requests well under) falls back to the standard library, and what that refuses
    too is a 400 rather than a 500."""
    try:
        canonical = orjson.dumps(call, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        try:
            canonical = json.dumps(call, sort_keys=True, default=repr, ensure_ascii=False).encode("utf-8", "replace")
        except (RecursionError, TypeError, ValueError) as exc:
            raise InvalidRequest(
                "the request cannot be checked by the loop guard (x-pilothouse-run-id): its JSON is nested too "
                "deeply or holds values that cannot be compared; send flatter data",
                code="invalid_run_request",
            ) from exc
    return hashlib.sha256(canonical).hexdigest()[:32]


def run_checks(
    prefix: str, project_id: str, caps: RunCaps, call: dict[str, Any], worst: WorstCase, idle_ttl_ms: int
) -> list[RunCheck]:
    """The run's counters for one call; `call` is its canonical form (`chat_call`, `Demand.call`)."""
    base = f"{prefix}run:{project_id}:{caps.run_id}:"
    checks = [RunCheck(CounterSpec(base + "calls", caps.calls, 1, idle_ttl_ms=idle_ttl_ms), "calls", caps)]
    checks.append(
        RunCheck(CounterSpec(base + "tokens", caps.tokens, worst.tokens, idle_ttl_ms=idle_ttl_ms), "tokens", caps)
    )
    cost = worst.cost_pico or 0
    checks.append(RunCheck(CounterSpec(base + "cost", caps.cost_pico, cost, idle_ttl_ms=idle_ttl_ms), "cost", caps))
    if caps.repeats is not None:
        key = base + "req:" + call_hash(call)
        checks.append(RunCheck(CounterSpec(key, caps.repeats, 1, idle_ttl_ms=idle_ttl_ms), "repeats", caps))
    return checks


def run_refusal(check: RunCheck, refusal: Refusal) -> RateLimited:
    caps, run = check.caps, f"run '{check.caps.run_id}'"
    headers = {"x-should-retry": "false"}
    used = refusal.used + refusal.reserved
    if check.kind == "repeats":
        return RateLimited(
            f"Loop detected: {run} already made this identical call {used} times (at most {caps.repeats} per run, "
            "limits.run_max_repeats). Change the request or start a new run.",
            code="loop_detected",
            headers=headers,
        )
    if check.kind == "calls":
        what = f"{used:,} calls of its cap of {caps.calls:,} (x-pilothouse-run-max-calls / limits.run_max_calls)"
    elif check.kind == "tokens":
        what = f"{used:,} tokens of its cap of {caps.tokens:,} (x-pilothouse-run-max-tokens / limits.run_max_tokens)"
    else:
        assert caps.cost_pico is not None
        what = (
            f"{usd(used)} of its cap of {usd(caps.cost_pico)} (x-pilothouse-run-max-cost-usd / limits.run_max_cost_usd)"
        )
    return RateLimited(
        f"Run limit reached: {run} has used {what}; this call was refused. Start a new run id if the work "
        "really needs more.",
        code="run_limit_exceeded",
        headers=headers,
    )
