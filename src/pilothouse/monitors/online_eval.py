"""Online evaluation: sampling rules that score a share of a project's production traces in the background.

A rule has a `rate` (0..1), a scope (prompt, version, model, tag, source) and scorers; each pass of the monitor
loop considers the traces that finished after the rule's cursor, keeps those whose hash of (rule, trace id)
falls under the rate (so every replica samples the same traces) and scores at most `budget` of them, the
budget of a pass. The cursor is advanced with a compare-and-set before scoring, so two replicas never score the
same traces. Scores are written with source `code` and author `online-eval:<rule>`.

Scorers available now: the guard scanners on the answer (`toxicity`, `pii`, `injection`: the scanner's score)
and `grounded`, a simple groundedness check: the share of answer sentences whose embedding (MiniLM) has a
cosine of at least `SUPPORT_COSINE` with some retrieved chunk (the `output` of the trace's retrieval spans).
The evaluation issue replaces `grounded` with real metrics (entailment, answer relevance, refusal).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from pilothouse.monitors.series import Scope
from pilothouse.store.ids import new_id
from pilothouse.store.scores import add_score
from pilothouse.store.tables import online_eval_rules, spans, traces

__all__ = ["SCORERS", "OnlineEvaluator", "SamplingRule", "add_sampling_rule", "list_sampling_rules", "sampled"]

log = logging.getLogger("pilothouse.monitors")
SCORERS = ("grounded", "toxicity", "pii", "injection")
SUPPORT_COSINE = 0.5
SETTLE_S = 5.0
"""Traces younger than this are left for the next pass (their spans may still be in the writer's batch)."""
_SCAN_MAX = 2000


@dataclass(frozen=True, slots=True)
class SamplingRule:
    id: str
    project_id: str
    name: str
    rate: float
    scope: Scope
    scorers: tuple[str, ...]
    budget: int
    enabled: bool
    cursor_at: float
    cursor_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "rate": self.rate,
            "scope": self.scope.to_dict(),
            "scorers": list(self.scorers),
            "budget": self.budget,
            "enabled": self.enabled,
            "cursor_at": self.cursor_at,
        }


def _row(row: Any) -> SamplingRule:
    return SamplingRule(
        row.id,
        row.project_id,
        row.name,
        row.rate,
        Scope.from_dict(row.scope),
        tuple(row.scorers),
        row.budget,
        bool(row.enabled),
        row.cursor_at,
        row.cursor_id,
    )


def add_sampling_rule(
    conn: Connection,
    *,
    project_id: str,
    name: str,
    rate: float,
    scorers: list[str],
    scope: dict[str, Any] | None = None,
    budget: int = 100,
    created_by: str | None = None,
    since: float | None = None,
) -> SamplingRule:
    """Store a rule that scores traces started after `since` (default: now). ValueError for a bad field."""
    if not 0.0 < rate <= 1.0:
        raise ValueError("rate must be in (0, 1]")
    if not scorers or any(s not in SCORERS for s in scorers):
        raise ValueError(f"scorers must be a non-empty list of {', '.join(SCORERS)}")
    if not 1 <= budget <= 10_000:
        raise ValueError("budget must be between 1 and 10000 traces per pass")
    parsed = Scope.from_dict(scope)
    taken = conn.execute(
        select(online_eval_rules.c.id).where(
            online_eval_rules.c.project_id == project_id, online_eval_rules.c.name == name
        )
    ).first()
    if taken is not None:
        raise ValueError(f"the project already has an online evaluation rule named {name!r}")
    now = time.time()
    rule = SamplingRule(
        new_id("oeval"),
        project_id,
        name,
        rate,
        parsed,
        tuple(scorers),
        budget,
        True,
        now if since is None else since,
        "",
    )
    values = {**rule.to_dict(), "scope": parsed.to_dict(), "cursor_id": ""}
    conn.execute(insert(online_eval_rules).values(**values, created_at=now, created_by=created_by))
    return rule


def list_sampling_rules(conn: Connection, project_id: str | None = None) -> list[SamplingRule]:
    query = select(online_eval_rules).order_by(online_eval_rules.c.name)
    if project_id is not None:
        query = query.where(online_eval_rules.c.project_id == project_id)
    return [_row(r) for r in conn.execute(query)]


def remove_sampling_rule(conn: Connection, project_id: str, name: str) -> bool:
    done = conn.execute(
        delete(online_eval_rules).where(online_eval_rules.c.project_id == project_id, online_eval_rules.c.name == name)
    )
    return done.rowcount == 1


def sampled(rule_id: str, trace_id: str, rate: float) -> bool:
    """Whether a rule samples a trace: a hash, so the choice is the same on every replica and every pass."""
    digest = hashlib.sha256(f"{rule_id}:{trace_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _text(value: Any) -> str:
    """The text of a span's input/output as stored (a message, a list of chunks, a string)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("message", "content", "text", "chunks", "documents"):
            if key in value:
                return _text(value[key])
        return ""
    if isinstance(value, list):
        return "\n".join(t for t in (_text(v) for v in value) if t)
    return ""


def _chunks(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = value.get("chunks", value.get("documents", [value]))
    items = value if isinstance(value, list) else [value]
    return [t for t in (_text(v) for v in items) if t.strip()]


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def groundedness(answer: str, chunks: list[str], embed: Callable[[list[str]], Any]) -> float | None:
    """Share of the answer's sentences supported by some chunk (cosine >= SUPPORT_COSINE); None: nothing to judge."""
    sentences = [s.strip() for s in _SENTENCE.split(answer) if len(s.strip()) >= 3]
    if not sentences or not chunks:
        return None
    vectors = np.asarray(embed(sentences + chunks), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = vectors[: len(sentences)] @ vectors[len(sentences) :].T
    return float(np.mean(sims.max(axis=1) >= SUPPORT_COSINE))


class OnlineEvaluator:
    """Runs every enabled sampling rule once per `run_once` (blocking: the runner calls it in a thread)."""

    def __init__(self, store: Any, embed: Callable[[list[str]], Any] | None = None) -> None:
        self.store = store
        self._embed = embed
        self._scanners: dict[str, Any] = {}

    def embed(self, texts: list[str]) -> Any:
        if self._embed is None:
            from pilothouse.embeddings import load_minilm

            self._embed = load_minilm().embed
        return self._embed(texts)

    def _scanner(self, name: str) -> Any:
        if name not in self._scanners:
            from pilothouse.guards.registry import build_scanner

            self._scanners[name] = build_scanner(name)
        return self._scanners[name]

    def run_once(self, now: float | None = None) -> int:
        """Score the sampled new traces of every rule; returns how many scores were written."""
        now = time.time() if now is None else now
        with self.store.connect() as conn:
            rules = [r for r in list_sampling_rules(conn) if r.enabled]
        written = 0
        for rule in rules:
            try:
                written += self._run_rule(rule, now)
            except Exception:
                log.exception("online evaluation rule %s failed", rule.name)
        return written

    def _claim(self, rule: SamplingRule, now: float) -> list[str]:
        """The sampled trace ids of this pass; the cursor moves past them first (compare-and-set)."""
        after = or_(
            traces.c.started_at > rule.cursor_at,
            and_(traces.c.started_at == rule.cursor_at, traces.c.id > rule.cursor_id),
        )
        # Scope filters on the trace columns (tags are checked below, portable across backends).
        where = [traces.c.project_id == rule.project_id, after, traces.c.started_at <= now - SETTLE_S]
        for column, value in (
            (traces.c.prompt_name, rule.scope.prompt),
            (traces.c.prompt_version, rule.scope.prompt_version),
            (traces.c.model, rule.scope.model),
            (traces.c.source, rule.scope.source),
        ):
            if value is not None:
                where.append(column == value)
        with self.store.begin() as conn:
            rows = conn.execute(
                select(traces.c.id, traces.c.started_at, traces.c.tags)
                .where(*where)
                .order_by(traces.c.started_at, traces.c.id)
                .limit(_SCAN_MAX)
            ).all()
            chosen: list[str] = []
            last = None
            for row in rows:
                last = row
                if rule.scope.tag is not None and rule.scope.tag not in (row.tags or []):
                    continue
                if sampled(rule.id, row.id, rule.rate):
                    chosen.append(row.id)
                    if len(chosen) == rule.budget:
                        break
            if last is None:
                return []
            moved = conn.execute(
                update(online_eval_rules)
                .where(
                    online_eval_rules.c.id == rule.id,
                    online_eval_rules.c.cursor_at == rule.cursor_at,
                    online_eval_rules.c.cursor_id == rule.cursor_id,
                )
                .values(cursor_at=last.started_at, cursor_id=last.id)
            )
            return chosen if moved.rowcount == 1 else []

    def _run_rule(self, rule: SamplingRule, now: float) -> int:
        written = 0
        for trace_id in self._claim(rule, now):
            with self.store.connect() as conn:
                rows = conn.execute(
                    select(spans.c.kind, spans.c.output)
                    .where(spans.c.trace_id == trace_id)
                    .order_by(spans.c.started_at)
                ).all()
            answer = "\n".join(_text(r.output) for r in rows if r.kind == "llm")
            chunks = [c for r in rows if r.kind == "retrieval" for c in _chunks(r.output)]
            results: dict[str, float] = {}
            for scorer in rule.scorers:
                if scorer == "grounded":
                    value = groundedness(answer, chunks, self.embed)
                    if value is not None:
                        results["grounded"] = value
                elif answer.strip():
                    from pilothouse.guards.scanner import ScanContext

                    verdict = self._scanner(scorer).scan(answer, ScanContext(role="assistant", direction="output"))
                    results[scorer] = float(verdict.score)
            if not results:
                continue
            with self.store.begin() as conn:
                for name, value in results.items():
                    add_score(
                        conn,
                        project_id=rule.project_id,
                        trace_id=trace_id,
                        name=name,
                        value=round(value, 4),
                        source="code",
                        author=f"online-eval:{rule.name}"[:200],
                        comment="online evaluation",
                    )
                    written += 1
        return written
