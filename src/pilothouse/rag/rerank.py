"""An optional rerank step: a chat model judges how well each retrieved chunk answers the query, through the
gateway pipeline in process, so the call is traced, budgeted and rate-limited like any other.

One call per query: the model gets the question and the first `top_n` chunks (numbered, each cut to
`max_chars`) and answers `{"scores": [s1, s2, ...]}`, one score from 0 to 10 per chunk in order. The chunks are
reordered by that score (the retrieval order breaks ties), the rest keep their places after them. An answer that
cannot be read (not JSON, too few scores) leaves the order as it was and says why (`error`); so does a refused
or failed call. The reranker's `llm` span joins the retrieval's trace, under its `retrieval` span.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pilothouse.gateway.call import GatewayCall
from pilothouse.principal import Principal
from pilothouse.rag.fusion import FusedHit
from pilothouse.tracing.model import TraceSource

RunCall = Callable[[GatewayCall], Awaitable[Any]]
"""`Pipeline.run` (returns an Outcome with `payload` or `error`)."""

PROMPT = (
    "Rate how well each passage answers the question, from 0 (unrelated) to 10 (answers it fully). "
    'Reply with JSON only: {"scores": [one number per passage, in passage order]}.'
)


class RerankOptions(BaseModel):
    """The `rerank` object of a query or of a chat request's `rag` object."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="The chat model that judges the chunks.")
    top_n: int = Field(default=10, ge=1, le=50, description="How many of the best chunks it judges.")
    max_chars: int = Field(default=800, ge=50, le=8000, description="Each chunk is cut to this many characters.")


@dataclass
class Reranked:
    hits: list[FusedHit]
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"scores": self.scores, "error": self.error}


def rerank_prompt(query: str, hits: Sequence[FusedHit], max_chars: int) -> list[dict[str, str]]:
    passages = "\n\n".join(f"Passage {i}: {' '.join(h.text.split())[:max_chars]}" for i, h in enumerate(hits, 1))
    return [
        {"role": "system", "content": PROMPT},
        {"role": "user", "content": f"Question: {query}\n\n{passages}"},
    ]


def read_scores(text: str, n: int) -> list[float] | None:
    """The n scores of an answer, or None. Takes the first JSON object holding `scores`; models that wrap it in
    prose or code fences are read too."""
    for match in re.finditer(r"\{[^{}]*\}", text, flags=re.DOTALL):
        try:
            value = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        scores = value.get("scores") if isinstance(value, dict) else None
        if isinstance(scores, list) and len(scores) >= n and all(_number(s) for s in scores[:n]):
            return [float(s) for s in scores[:n]]
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def reorder(hits: Sequence[FusedHit], scores: Sequence[float]) -> list[FusedHit]:
    judged = list(hits[: len(scores)])
    order = sorted(range(len(judged)), key=lambda i: (-scores[i], i))
    return [judged[i] for i in order] + list(hits[len(scores) :])


async def llm_rerank(
    run: RunCall,
    *,
    principal: Principal,
    options: RerankOptions,
    query: str,
    hits: Sequence[FusedHit],
    source: TraceSource,
    trace_id: str | None = None,
    parent_span_id: str | None = None,
) -> Reranked:
    """Rerank `hits` with `options.model` (see the module docstring)."""
    judged = list(hits[: options.top_n])
    if len(judged) < 2:
        return Reranked(list(hits))
    body = {
        "model": options.model,
        "temperature": 0,
        "max_tokens": 16 + 6 * len(judged),
        "messages": rerank_prompt(query, judged, options.max_chars),
    }
    call = GatewayCall(
        kind="chat",
        body=body,
        principal=principal,
        source=source,
        trace_name="rag rerank",
        trace_id=trace_id,
        parent_span_id=parent_span_id,
    )
    outcome = await run(call)
    if outcome.error is not None:
        return Reranked(list(hits), error=f"the rerank call failed: {outcome.error.message}")
    text = _answer_text(outcome.payload)
    scores = read_scores(text, len(judged))
    if scores is None:
        return Reranked(list(hits), error="the rerank model's answer held no readable scores")
    return Reranked(reorder(hits, scores), {h.id: s for h, s in zip(judged, scores, strict=True)})


def _answer_text(payload: Any) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""
