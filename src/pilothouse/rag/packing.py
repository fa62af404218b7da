"""Context packing: fit the best retrieved chunks into the target model's token budget.

The budget is the model's context window minus the prompt around the context and the room kept for the answer
(`context_budget`). Chunks are taken best first while they fit; one that does not fit is dropped (a smaller
one after it may still fit), as is a repeat of a chunk already packed, a chunk carrying a flag the caller
refuses (`drop_flags`, e.g. `injection`), and everything past `max_chunks`. Every drop is reported with its
reason.

The packed chunks are then ordered against "lost in the middle" (Liu et al., 2023: models use the start and the
end of a long context best): the best chunk first, the second best last, the third second, and so on, so the
weakest land in the middle. Each chunk is introduced by its citation marker `[n]` (numbered in the order the
model reads them) and its source, and the citations list what each marker stands for, with the age of the
source so an answer can say how fresh it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

TokenCounter = Callable[[str], int]
DropReason = Literal["budget", "duplicate", "flagged", "max_chunks"]


@dataclass(frozen=True, slots=True)
class PackItem:
    """A ranked chunk offered to the packer."""

    id: str
    text: str
    score: float
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """What a marker `[n]` in the context stands for."""

    marker: int
    chunk_id: str
    score: float
    tokens: int
    document: str | None = None
    source: str | None = None
    title: str | None = None
    position: int | None = None
    indexed_at: float | None = None
    modified_at: float | None = None
    age_seconds: float | None = None  # since the source last changed (or was indexed, when its mtime is unknown)
    flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "marker": self.marker,
            "chunk_id": self.chunk_id,
            "score": self.score,
            "tokens": self.tokens,
            "document": self.document,
            "source": self.source,
            "title": self.title,
            "position": self.position,
            "indexed_at": self.indexed_at,
            "modified_at": self.modified_at,
            "age_seconds": self.age_seconds,
            "flags": list(self.flags),
        }


@dataclass(frozen=True, slots=True)
class Dropped:
    """A chunk left out of the context, and why."""

    chunk_id: str
    reason: DropReason
    score: float
    tokens: int

    def to_json(self) -> dict[str, Any]:
        return {"chunk_id": self.chunk_id, "reason": self.reason, "score": self.score, "tokens": self.tokens}


@dataclass(frozen=True, slots=True)
class Packed:
    """The context block for the prompt, what its markers cite, and what was left out."""

    context: str
    citations: list[Citation] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    tokens: int = 0
    budget: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "budget": self.budget,
            "citations": [c.to_json() for c in self.citations],
            "dropped": [d.to_json() for d in self.dropped],
        }


def context_budget(context_window: int, *, prompt_tokens: int, answer_tokens: int) -> int:
    """Tokens left for retrieved context (never negative)."""
    return max(0, context_window - prompt_tokens - answer_tokens)


def lost_in_the_middle(n: int) -> list[int]:
    """Positions for ranks 0..n-1: rank 0 first, rank 1 last, rank 2 second, rank 3 second to last, ..."""
    front: list[int] = []
    back: list[int] = []
    for rank in range(n):
        (front if rank % 2 == 0 else back).append(rank)
    return front + back[::-1]


def pack(
    items: Sequence[PackItem],
    *,
    budget: int,
    count_tokens: TokenCounter,
    max_chunks: int | None = None,
    drop_flags: Collection[str] = (),
    reorder: bool = True,
    now: float | None = None,
) -> Packed:
    """Pack `items` (best first) into `budget` tokens (see the module docstring)."""
    if budget < 0:
        raise ValueError("the token budget must be >= 0")
    clock = time.time() if now is None else now
    kept: list[tuple[PackItem, int]] = []
    dropped: list[Dropped] = []
    seen_texts: set[str] = set()
    used = 0
    for item in items:
        meta = item.metadata or {}
        flags = _flags(meta)
        block_tokens = count_tokens(_block(0, item.text, meta))
        reason: DropReason | None = None
        if drop_flags and any(f in drop_flags for f in flags):
            reason = "flagged"
        elif " ".join(item.text.split()) in seen_texts:
            reason = "duplicate"
        elif max_chunks is not None and len(kept) >= max_chunks:
            reason = "max_chunks"
        elif used + block_tokens > budget:
            reason = "budget"
        if reason is not None:
            dropped.append(Dropped(item.id, reason, item.score, block_tokens))
            continue
        kept.append((item, block_tokens))
        seen_texts.add(" ".join(item.text.split()))
        used += block_tokens
    order = lost_in_the_middle(len(kept)) if reorder else list(range(len(kept)))
    blocks: list[str] = []
    citations: list[Citation] = []
    for marker, rank in enumerate(order, start=1):
        item, tokens = kept[rank]
        meta = item.metadata or {}
        blocks.append(_block(marker, item.text, meta))
        citations.append(_citation(marker, item, tokens, meta, clock))
    return Packed("\n\n".join(blocks), citations, dropped, used, budget)


def _flags(meta: Mapping[str, Any]) -> tuple[str, ...]:
    flags = meta.get("_flags")
    return tuple(str(f) for f in flags) if isinstance(flags, list | tuple) else ()


def _block(marker: int, text: str, meta: Mapping[str, Any]) -> str:
    # The marker's width is counted with a two-digit placeholder so a chunk's size does not depend on its place.
    label = f"[{marker}]" if marker else "[00]"
    where = meta.get("_title") or meta.get("_source")
    head = f"{label} {where}" if where else label
    return f"{head}\n{text.strip()}"


def _number(meta: Mapping[str, Any], key: str) -> float | None:
    value = meta.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(meta: Mapping[str, Any], key: str) -> str | None:
    value = meta.get(key)
    return str(value) if value is not None else None


def _citation(marker: int, item: PackItem, tokens: int, meta: Mapping[str, Any], now: float) -> Citation:
    indexed_at, modified_at = _number(meta, "_indexed_at"), _number(meta, "_modified_at")
    since = modified_at if modified_at is not None else indexed_at
    position = _number(meta, "_position")
    return Citation(
        marker=marker,
        chunk_id=item.id,
        score=item.score,
        tokens=tokens,
        document=_text(meta, "_document"),
        source=_text(meta, "_source"),
        title=_text(meta, "_title"),
        position=int(position) if position is not None else None,
        indexed_at=indexed_at,
        modified_at=modified_at,
        age_seconds=max(0.0, now - since) if since is not None else None,
        flags=_flags(meta),
    )
