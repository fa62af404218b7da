"""What the latency runs look up: 100k cached requests, their answers, and question embeddings.

Exact cache: N distinct chat requests (one user message each), stored with a realistic answer.

Semantic cache: `bases` distinct questions generated from templates (support and how-to questions about one
product, so they crowd the same region of embedding space: a hard case for the pre-filter), embedded with
the real MiniLM. To reach N vectors without embedding N texts, each base also gets variants: its vector plus
Gaussian noise (cosine ~0.85 to the base), answering the same question. Queries are real texts embedded
at query time (the embedding is part of every measured lookup): rewordings of stored questions (expected
hits) and questions about other things (misses).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.gateway.cache.entry import CachedAnswer

FloatArray = npt.NDArray[np.float32]

MODEL = "bench-model"
SUBJECTS = [
    "my password",
    "the billing address",
    "an API key",
    "two-factor authentication",
    "dark mode",
    "email notifications",
    "a team member",
    "the invoice",
    "a webhook",
    "single sign-on",
    "the default currency",
    "my profile photo",
    "the export schedule",
    "the audit log",
    "a custom domain",
    "the data retention period",
    "the mobile app",
    "the payment method",
    "a project",
    "the workspace name",
    "push notifications",
    "the time zone",
    "an integration with Slack",
    "the usage report",
    "a shared dashboard",
    "the backup",
    "an SSH key",
    "the language setting",
    "a support ticket",
    "the subscription plan",
    "a coupon code",
    "the tax ID",
    "the delivery address",
    "a saved search",
    "the access token",
    "an alert rule",
    "the onboarding checklist",
    "a user role",
    "the IP allowlist",
    "the rate limit",
]
VERBS = [
    "reset",
    "change",
    "update",
    "enable",
    "disable",
    "delete",
    "export",
    "configure",
    "view",
    "rotate",
    "restore",
    "share",
    "rename",
    "verify",
    "add",
    "remove",
    "download",
    "set up",
    "find",
    "edit",
    "transfer",
    "archive",
    "copy",
    "test",
    "schedule",
]
WHERE = [
    "",
    " on mobile",
    " in the dashboard",
    " through the API",
    " for my whole team",
    " on Windows",
    " without admin rights",
    " from the command line",
    " after the trial ended",
    " in bulk",
]
FORMS = [
    "How do I {v} {s}{w}?",
    "Where can I {v} {s}{w}?",
    "Is it possible to {v} {s}{w}?",
    "What is the way to {v} {s}{w}?",
]
REWORDS = [
    ("How do I", "How can I"),
    ("Where can I", "Where do I"),
    ("Is it possible to", "Can I"),
    ("What is", "What's"),
]
OTHER = [
    "Write a limerick about {x}.",
    "Translate '{x}' into German.",
    "Summarize the history of {x}.",
    "What rhymes with {x}?",
    "Give me a fun fact about {x}.",
]
THINGS = [
    "volcanoes",
    "jazz",
    "the Roman empire",
    "octopuses",
    "coffee",
    "chess",
    "the moon",
    "bicycles",
    "tea",
    "glaciers",
    "origami",
    "lighthouses",
    "bees",
    "sourdough",
    "comets",
    "violins",
    "deserts",
    "penguins",
]


def questions(count: int, seed: int = 7) -> list[str]:
    combos = [f.format(v=v, s=s, w=w) for f, v, s, w in itertools.product(FORMS, VERBS, SUBJECTS, WHERE)]
    random.Random(seed).shuffle(combos)
    return combos[:count]


def reworded(question: str) -> str:
    for old, new in REWORDS:
        if question.startswith(old):
            return new + question[len(old) :]
    return question


FILLERS = [
    ("", ""),
    ("Quick question: ", ""),
    ("Hi, ", ""),
    ("", " Thanks!"),
    ("Hello, ", " Thank you."),
    ("Please tell me: ", ""),
    ("", " Any idea?"),
    ("Hey, ", ""),
]
"""Words a user adds around a question without changing it: with the rewordings, a stored question has
len(FILLERS) distinct queries that should hit it."""


class Queries:
    """Query texts that do not repeat within a run (until the rewordings of every base are used up), so no
    per-text cache (the contrast check's features) is warm for a query, as with real traffic: rewordings of
    stored questions (expected hits) and unrelated questions (misses)."""

    def __init__(self, texts: list[str], seed: int = 5) -> None:
        order = [(base, filler) for filler in range(len(FILLERS)) for base in range(len(texts))]
        random.Random(seed).shuffle(order)
        self.texts = texts
        self._hits = itertools.cycle(order)
        self._misses = itertools.count()
        self._rng = random.Random(seed + 1)

    def hit(self) -> tuple[int, str]:
        """(base index, a rewording of that stored question)."""
        base, filler = next(self._hits)
        before, after = FILLERS[filler]
        text = reworded(self.texts[base])
        if before and not before.endswith(": "):
            text = text[0].lower() + text[1:]
        return base, before + text + after

    def miss(self) -> str:
        return self._rng.choice(OTHER).format(x=self._rng.choice(THINGS)) + f" ({next(self._misses)})"


def answer(i: int) -> bytes:
    """A cached answer of realistic size (~0.7 KB)."""
    text = f"Answer number {i}: " + "Open Settings, choose the section, then follow the steps shown there. " * 4
    usage: dict[str, Any] = {"prompt_tokens": 21, "completion_tokens": 60, "total_tokens": 81}
    body = {
        "id": f"chatcmpl-{i}",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    }
    return CachedAnswer(model=MODEL, usage=usage, cost_usd=None, trace_id=f"t{i}", body=body).dumps()


def embed_cached(texts: list[str], cache_dir: Path) -> FloatArray:
    """MiniLM embeddings of `texts`, kept in `cache_dir` (bench/results/, gitignored) between runs."""
    from pilothouse.embeddings.minilm import load_minilm

    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache_dir / f"cache-bench-embeddings-{digest}.npy"
    if path.exists():
        cached: FloatArray = np.load(path)
        return cached
    vectors = load_minilm().embed(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def variants(bases: FloatArray, total: int, cosine: float = 0.85, seed: int = 3) -> tuple[FloatArray, np.ndarray]:
    """`total` unit vectors: every base itself first, then noisy copies (cosine ~`cosine` to their base).
    Returns the vectors and, per vector, the index of its base."""
    rng = np.random.default_rng(seed)
    n_bases, dim = bases.shape
    owner = np.arange(total) % n_bases
    sigma = np.sqrt((1 / cosine**2 - 1) / dim)
    out = bases[owner] + (rng.standard_normal((total, dim)) * sigma).astype(np.float32)
    out[:n_bases] = bases
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32), owner
