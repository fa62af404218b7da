"""The cost methods of the `Pilothouse` client (a mixin, so sdk/client.py stays small).

ph = Pilothouse()
report = ph.cost_report(by="model", since="7d")              # requests, tokens, cost, latency per model
for row in report["groups"]:
    print(row["group"], row["cost_usd"], row["latency_ms"]["p95"])
forecast = ph.estimate_cost(prompt="support-answer@production", variables={"question": "..."}, n=1000,
                            models=["smollm2-135m", "gpt-4o-mini"])
for model in forecast["estimates"]:
    print(model["model"], model["cost_usd"])                 # None when the price is unknown
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pilothouse.costs.merge import merge_estimates

PART_REQUESTS = 1_000
PART_BYTES = 2 * 1024 * 1024


def request_parts(requests: Sequence[Any]) -> Iterator[tuple[int, list[Any]]]:
    """(index of the first, bodies) parts of at most PART_REQUESTS bodies and about PART_BYTES of JSON."""
    start, size = 0, 0
    part: list[Any] = []
    for i, body in enumerate(requests):
        body_size = len(json.dumps(body, separators=(",", ":")))
        if part and (len(part) >= PART_REQUESTS or size + body_size > PART_BYTES):
            yield start, part
            start, part, size = i, [], 0
        part.append(body)
        size += body_size
    if part:
        yield start, part


class CostsMixin:
    if TYPE_CHECKING:

        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def cost_report(
        self, *, by: str = "model", since: str = "7d", until: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        """Per group (`by`: key, project, model, user or prompt) over [since, until): requests, errors, tokens,
        cost, cache savings, latency p50/p95/p99, time to first token and output tokens per second.
        `since`/`until`: 7d, 24h, 30m, epoch seconds or ISO 8601. `project` (owner keys): a project or `all`."""
        params = {k: v for k, v in {"by": by, "since": since, "until": until, "project": project}.items() if v}
        result: dict[str, Any] = self.request("GET", "/api/costs/report", params=params)
        return result

    def estimate_cost(
        self,
        *,
        models: Sequence[str] = (),
        prompt: str | None = None,
        variables: Mapping[str, Any] | None = None,
        n: int = 1,
        requests: Sequence[Mapping[str, Any]] | None = None,
        output_tokens: int | None = None,
    ) -> dict[str, Any]:
        """What `n` calls of `prompt` (NAME[@REF]), or the chat bodies in `requests`, would cost on each of
        `models`, as a low (p50 of past answer lengths) to high (p95) range. Large `requests` lists are sent
        in parts and the answers combined."""
        body: dict[str, Any] = {
            "models": list(models),
            "prompt": prompt,
            "n": n,
            "variables": None if variables is None else dict(variables),
        }
        if output_tokens is not None:
            body["output_tokens"] = output_tokens
        if requests is None:
            result: dict[str, Any] = self.request("POST", "/api/costs/estimate", json=body, timeout=300.0)
            return result
        parts = [
            self.request(
                "POST",
                "/api/costs/estimate",
                json={**body, "requests": list(part), "first_index": start},
                timeout=300.0,
            )
            for start, part in request_parts(requests)
        ] or [self.request("POST", "/api/costs/estimate", json={**body, "requests": []})]
        return merge_estimates(parts)
