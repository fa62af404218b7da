"""What the admission stage reads of a prepared call, chat or embeddings alike.

Both kinds of call produce a `Demand` (`Prepared.demand()`, `PreparedEmbeddings.demand()` in
gateway/prepared.py), so rate limits, budgets and loop guards are one code path for every call that reaches
a model. Only chat has an output: an embeddings call asks for `max_tokens=0`, and its worst case is its
input tokens priced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pilothouse.config import Deployment, ModelEntry
from pilothouse.tracing.model import SpanRecord


@dataclass(frozen=True, slots=True)
class Demand:
    entry: ModelEntry
    """The model asked for (its deployments and fallbacks bound the cost)."""
    deployment: Deployment
    """The deployment chosen for the call."""
    span: SpanRecord
    """The call's llm or embedding span (a refusal replaces it with an `admission` guard span)."""
    input_tokens: int
    """What the chosen deployment bills at most: its exact count where known, else `input_bound`."""
    input_bound: int
    """An upper bound on the input tokens under any tokenizer (`gateway.tokens`)."""
    max_tokens: int | None
    """The output bound asked for: the request's max_tokens (None: the deployment's limits), 0 for embeddings."""
    call: dict[str, Any]
    """The canonical call (model, input, parameters) the loop guard hashes to count identical repeats."""
