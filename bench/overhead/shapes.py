"""The load shapes of the overhead benchmark: what each one models, its wrk settings and its targets.

- `fast`: 32 connections to an upstream that answers in 20 ms. Upstream time is small, so this measures
  what the gateway itself costs per request (CPU, added latency).
- `long`: 500 connections to an upstream that answers in 1.5 s, the shape of real LLM traffic: many calls in
  flight, each mostly waiting. The gateway's CPU hardly matters here; what it measures is whether anything
  in the gateway (a connection pool, a concurrency cap) queues calls that the upstream would have served.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    connections: int
    delay_ms: float
    duration_s: float
    warmup_s: float
    timeout_s: float  # wrk's client timeout: a request unanswered this long counts as a timeout error
    min_rps_vs_direct: float
    litellm_checks: bool  # the LiteLLM ratios are targets for this shape (otherwise LiteLLM is shown only)
    describes: str


SHAPES: dict[str, Shape] = {
    "fast": Shape(32, 20.0, 15.0, 5.0, 10.0, 0.5, True, "gateway cost per request (20 ms upstream)"),
    "long": Shape(500, 1500.0, 20.0, 5.0, 10.0, 0.9, False, "long LLM calls: 500 in flight, 1.5 s upstream"),
}
DEFAULT_SHAPE = "fast"
