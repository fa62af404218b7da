"""Rate limits: requests and tokens per minute per key, project and model, as sliding windows.

A request counts 1 against each rpm window and its worst-case tokens (input + output bound) against each
tpm window; once it has run, the tpm entry is corrected to the tokens it actually used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pilothouse.errors import RateLimited
from pilothouse.gateway.limits.store import Refusal, WindowSpec
from pilothouse.store.budgets import RateLimit

MINUTE_MS = 60_000
Kind = Literal["rpm", "tpm"]


@dataclass(frozen=True, slots=True)
class RateCheck:
    spec: WindowSpec
    limit: RateLimit
    kind: Kind


def window_key(prefix: str, limit: RateLimit, kind: Kind) -> str:
    return f"{prefix}rate:{limit.id}:{kind}"


def rate_checks(prefix: str, limits: list[RateLimit], tokens: int) -> list[RateCheck]:
    checks = []
    for limit in limits:
        if limit.rpm is not None:
            checks.append(
                RateCheck(WindowSpec(window_key(prefix, limit, "rpm"), limit.rpm, 1, MINUTE_MS), limit, "rpm")
            )
        if limit.tpm is not None:
            spec = WindowSpec(window_key(prefix, limit, "tpm"), limit.tpm, tokens, MINUTE_MS)
            checks.append(RateCheck(spec, limit, "tpm"))
    return checks


def describe_subject(scope: str, subject: str) -> str:
    if scope in ("user", "prompt", "model"):
        return f"{scope} '{subject}'"
    return f"{scope} {subject}"


def rate_refusal(check: RateCheck, refusal: Refusal) -> RateLimited:
    limit, spec = check.limit, check.spec
    who = describe_subject(limit.scope, limit.subject)
    if check.kind == "rpm":
        what = f"{who} may make {spec.limit:,} requests per minute ({refusal.used:,} in the last minute)"
    else:
        what = (
            f"{who} may use {spec.limit:,} tokens per minute ({refusal.used:,} in the last minute; this request "
            f"counts {spec.amount:,}: its input plus max_tokens)"
        )
    if refusal.retry_after_ms is None:
        return RateLimited(
            f"Rate limit: {what}, so this request can never fit; lower max_tokens or shorten the messages "
            f"(limit {limit.id}).",
            code="rate_limit_exceeded",
            headers={"x-should-retry": "false"},
        )
    seconds = max(1, math.ceil(refusal.retry_after_ms / 1000))
    return RateLimited(
        f"Rate limit reached: {what}. Retry in {seconds} s (limit {limit.id}).",
        code="rate_limit_exceeded",
        headers={"retry-after": str(seconds)},
    )
