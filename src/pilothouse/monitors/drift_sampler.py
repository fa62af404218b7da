"""The input-drift sampler: off the request path, embed a sample of finished traces' input text.

Each pass of the monitor loop, for every enabled `input_drift` rule:

1. **Forward**: the traces that ended since the rule's cursor (up to `SETTLE_S` ago, so the trace writer's
   batch has landed; traces are written when they end), an hour at a time, reading traces that started at most
   `LOOKBACK_S` before the range (longer traces are not sampled); **backfill**: then, older hours down to what
   the rule's reference needs (a new rule, or a reference pinned further back), newest first.
2. For each hour, at most `samples_per_hour` traces in the rule's scope, a uniform sample (the first by trace
   id: ids are random), skipping traces already embedded for another rule and traces without input text.
3. Their input text is embedded with the shared MiniLM runtime in batches, and in one transaction the vectors
   are stored and the cursor moved with a compare-and-set (two replicas never both store a range; a crash
   before the commit leaves the range to the next pass).

Work is bounded: at most `budget` embeddings per rule per pass. Stored rows are pruned to what rules still need
(the recent window and its reference, plus a day); a project without drift rules keeps none.

The **input text** of a trace is its first `llm` span's last user message (the question), or else the input of
its first span that has one. Only traces whose content was kept have any: with content capture `off`
(tracing/capture.py) or after retention purged the content, a trace is skipped, and a project that keeps no
content has no input drift to measure.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from pilothouse.monitors import drift_store
from pilothouse.monitors.drift_settings import INPUT_DRIFT, DriftSettings
from pilothouse.monitors.rules import AlertRule, all_enabled_rules
from pilothouse.monitors.series import scope_filter
from pilothouse.store.tables import spans, traces

__all__ = ["CHUNK_S", "SETTLE_S", "DriftSampler", "input_text"]

log = logging.getLogger("pilothouse.monitors")
SETTLE_S = 10.0
LOOKBACK_S = 900.0
CHUNK_S = 3600.0
MAX_TEXT = 2000
"""Characters of input text embedded (MiniLM reads 256 tokens at most anyway)."""
KEEP_EXTRA_S = 86_400.0
FOREVER = 1e18

Embed = Callable[[list[str]], Any]


def _content(value: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [p.get("text") if isinstance(p, dict) else p for p in value]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _flatten(value: Any) -> str:
    """Any stored input (a string, a dict of arguments, a list) as text: its strings joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list):
            return _last_user(value["messages"])
        return "\n".join(t for t in (_flatten(v) for v in value.values()) if t)
    if isinstance(value, list):
        return "\n".join(t for t in (_flatten(v) for v in value) if t)
    return ""


def _last_user(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content(message.get("content"))
    return ""


def input_text(conn: Connection, trace_ids: list[str]) -> dict[str, str]:
    """The input text of each trace that has one (see the module docstring)."""
    if not trace_ids:
        return {}
    rows = conn.execute(
        select(spans.c.trace_id, spans.c.kind, spans.c.input)
        .where(spans.c.trace_id.in_(trace_ids), spans.c.input.is_not(None))
        .order_by(spans.c.trace_id, spans.c.started_at)
    ).all()
    llm: dict[str, str] = {}
    first: dict[str, str] = {}
    for row in rows:
        if row.kind == "llm" and row.trace_id not in llm and isinstance(row.input, dict):
            messages = row.input.get("messages")
            text = _last_user(messages) if isinstance(messages, list) else ""
            if text.strip():
                llm[row.trace_id] = text
        if row.trace_id not in first:
            text = _flatten(row.input)
            if text.strip():
                first[row.trace_id] = text
    out = {**first, **llm}
    return {k: v.strip()[:MAX_TEXT] for k, v in out.items()}


class DriftSampler:
    """Samples and embeds inputs for every enabled input-drift rule (blocking: run it in a thread)."""

    def __init__(self, store: Any, embed: Embed | None = None, *, budget: int = 512) -> None:
        self.store = store
        self.budget = budget
        self._embed = embed

    def embed(self, texts: list[str]) -> Any:
        if self._embed is None:
            from pilothouse.embeddings import load_minilm

            self._embed = load_minilm().embed
        return self._embed(texts)

    def run_once(self, now: float | None = None) -> int:
        """One pass over every drift rule, then pruning; returns how many inputs were embedded."""
        now = time.time() if now is None else now
        with self.store.connect() as conn:
            rules = [r for r in all_enabled_rules(conn) if r.metric == INPUT_DRIFT]
        stored = 0
        for rule in rules:
            try:
                stored += self.sample_rule(rule, now)
            except Exception:
                log.exception("input drift sampling for rule %s failed", rule.name)
        try:
            self.prune(rules, now)
        except Exception:
            log.exception("pruning input embeddings failed")
        return stored

    @staticmethod
    def live_from(settings: DriftSettings, now: float) -> float:
        """The oldest time of the rule's moving windows (the recent one, and the trailing reference)."""
        end = math.floor(now / settings.bucket_s) * settings.bucket_s
        return end - settings.window_s - (0.0 if settings.pinned else settings.baseline_s)

    @classmethod
    def needed_from(cls, settings: DriftSettings, now: float) -> float:
        """The oldest time the rule's windows read (a pinned reference included)."""
        oldest = cls.live_from(settings, now)
        if settings.reference_start is not None:
            oldest = min(oldest, settings.reference_start)
        return oldest

    def sample_rule(self, rule: AlertRule, now: float) -> int:
        settings = rule.detector
        assert isinstance(settings, DriftSettings)
        upto = now - SETTLE_S
        live, need = self.live_from(settings, now), self.needed_from(settings, now)
        left = self.budget
        stored = 0
        while left > 0:
            with self.store.begin() as conn:
                cursor = drift_store.get_cursor(conn, rule.id, rule.project_id, upto)
            if cursor.cursor_at < upto:
                if cursor.cursor_at < live:  # a long-idle rule skips what no window reads any more, and
                    lo = covered = live  # what it had covered is no longer contiguous with what comes next
                else:
                    lo, covered = cursor.cursor_at, min(cursor.covered_from, cursor.cursor_at)
                hi = min(upto, lo + CHUNK_S)
                if hi <= lo:
                    break
                moved = {"covered_from": covered, "cursor_at": hi}
            elif need < cursor.covered_from:
                hi = cursor.covered_from
                if settings.reference_end is not None and settings.reference_end < hi <= live:
                    hi = settings.reference_end  # no window reads between a pinned reference and the recent one
                lo = max(need, hi - CHUNK_S)
                moved = {"covered_from": lo, "cursor_at": cursor.cursor_at}
            else:
                break
            count = min(left, max(1, math.ceil(settings.samples_per_hour * max(0.0, hi - lo) / 3600.0)))
            done = self._sample_range(rule, cursor, lo, hi, count, moved, now) if hi > lo else 0
            if done < 0:  # another replica took the range: its cursor is fresher, stop this pass
                break
            stored += done
            left -= max(done, 1)
        return stored

    def _sample_range(
        self, rule: AlertRule, cursor: drift_store.Cursor, lo: float, hi: float, count: int, moved: dict[str, float],
        now: float,
    ) -> int:  # fmt: skip
        """Embed up to `count` sampled traces of [lo, hi) and move the cursor; -1 when the cursor had moved."""
        with self.store.connect() as conn:
            ended = func.coalesce(traces.c.ended_at, traces.c.started_at)
            where = [
                *scope_filter(conn, rule.project_id, rule.scope, lo - LOOKBACK_S, hi),
                ended >= lo,
                ended < hi,
                traces.c.content_purged_at.is_(None),
            ]
            candidates = conn.execute(
                select(
                    traces.c.id,
                    traces.c.project_id,
                    traces.c.started_at,
                    traces.c.prompt_name,
                    traces.c.prompt_version,
                    traces.c.model,
                    traces.c.source,
                    traces.c.tags,
                )
                .where(*where)
                .order_by(traces.c.id)
                .limit(count * 2)
            ).all()
            ids = [c.id for c in candidates]
            already = drift_store.embedded_ids(conn, ids)
            texts = input_text(conn, [i for i in ids if i not in already])
        chosen = [c for c in candidates if c.id in already or c.id in texts][:count]
        fresh = [c._asdict() for c in chosen if c.id not in already]
        vectors = (
            np.asarray(self.embed([texts[r["id"]] for r in fresh]), dtype=np.float32)
            if fresh
            else np.zeros((0, 0), dtype=np.float32)
        )
        try:
            with self.store.begin() as conn:
                if not drift_store.move_cursor(conn, cursor, **moved):
                    return -1
                drift_store.insert_embeddings(conn, fresh, vectors, now)
        except IntegrityError:  # another replica stored one of these traces meanwhile: retry next pass
            return -1
        return len(fresh)

    def prune(self, rules: list[AlertRule], now: float) -> int:
        """Delete embeddings no rule reads any more (bounded per pass)."""
        keep: dict[str, list[tuple[float, float]]] = {}
        for rule in rules:
            settings = rule.detector
            assert isinstance(settings, DriftSettings)
            ranges = keep.setdefault(rule.project_id, [])
            ranges.append((self.live_from(settings, now) - KEEP_EXTRA_S, FOREVER))
            if settings.reference_start is not None and settings.reference_end is not None:
                ranges.append((settings.reference_start, settings.reference_end))
        deleted = 0
        with self.store.begin() as conn:
            for project_id in drift_store.projects_with_embeddings(conn):
                deleted += drift_store.prune(conn, project_id, keep.get(project_id, []))
        return deleted
