"""Online evaluation: sampling rules that score a share of a project's production traces in the background.

A rule has a `rate` (0..1), a scope (prompt, version, model, tag, source), the metrics it scores (names from
the metric registry, `pilothouse.evals.metrics`: `groundedness`, `answer_relevance`, `toxicity`, `pii`,
`injection`, `refusal`, or a plugin's) and a `budget`: the most traces one pass scores, so scoring never
competes with the request path for more than a bounded amount of work. Each pass of the monitor loop considers
the traces that started after the rule's cursor, keeps those whose hash of (rule, trace id) falls under the
rate (so every replica samples the same traces), and scores at most `budget` of them; the ones past the budget
wait for the next pass. The cursor moves with a compare-and-set before scoring, so two replicas never score the
same traces (a replica that dies mid-pass loses that pass's scores: scoring is at most once).

A trace becomes a metric example: its answer (the last `llm` or `cache` span's output), its question (the last
user message that model call was sent), and its context (the chunks of its `retrieval` spans). Scores are
written with source `code` and author `online-eval:<rule>`, named after the metric; a bool is a boolean score
(`refusal`: 1 when the answer refuses), a number in [0, 1] a numeric one (`groundedness` under 0.5 is an
ungrounded answer, which the monitors' hallucination rate counts). Traces that cannot be scored are skipped
and counted by reason: the project's content capture is `off`, retention purged the content, no answer was
kept, or a metric could not judge it (`groundedness` without retrieved context).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from pilothouse.evals.metrics import Example, Metric, build_metric, metric_class, metric_names
from pilothouse.monitors.series import Scope
from pilothouse.store.ids import new_id
from pilothouse.store.projects import content_capture
from pilothouse.store.scores import add_score
from pilothouse.store.tables import online_eval_rules, spans, traces

__all__ = [
    "SCORERS",
    "OnlineEvaluator",
    "RulePass",
    "SamplingRule",
    "add_sampling_rule",
    "list_sampling_rules",
    "online_metric_names",
    "sampled",
    "trace_example",
]

log = logging.getLogger("pilothouse.monitors")
SCORERS = ("groundedness", "answer_relevance", "toxicity", "pii", "injection", "refusal")
"""The built-in metrics suited to production traces (they need no expected answer); plugins add more."""
ALIASES = {"grounded": "groundedness"}
"""Scorer names of rules created before the metric registry."""
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


@dataclass(slots=True)
class RulePass:
    """What one pass of one rule did."""

    rule: str
    considered: int = 0
    """New traces in scope that the cursor moved past."""
    sampled: int = 0
    """Of those, the ones the rate picked (at most the budget)."""
    scored: int = 0
    """Traces that got at least one score."""
    written: int = 0
    """Scores written."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Traces (or, for `<metric>: <why>`, metric judgements) not scored, by reason."""
    claimed_elsewhere: bool = False
    """Another replica moved the cursor first; this one scored nothing."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "considered": self.considered,
            "sampled": self.sampled,
            "scored": self.scored,
            "written": self.written,
            "skipped": dict(self.skipped),
            "claimed_elsewhere": self.claimed_elsewhere,
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


def online_metric_names() -> list[str]:
    """Registered metrics that can score production traces: not the deterministic ones (they compare with an
    expected answer, which production traffic does not have), nor LLM judges (they need a rubric and a judge
    model, which a sampling rule does not carry yet)."""
    names = []
    for name in metric_names():
        try:
            if metric_class(name).family not in ("deterministic", "judge"):
                names.append(name)
        except Exception:  # a broken plugin must not stop rules from being managed
            log.warning("metric %s cannot be loaded; it is not offered for online evaluation", name, exc_info=True)
            continue
    return names


def _check_scorers(scorers: list[str]) -> None:
    if not scorers:
        raise ValueError(f"scorers must be a non-empty list of metric names: {', '.join(online_metric_names())}")
    available = online_metric_names()
    for scorer in scorers:
        if ALIASES.get(scorer, scorer) not in available:
            raise ValueError(
                f"unknown scorer {scorer!r}: online evaluation scores with one of {', '.join(available)} "
                "(deterministic metrics need an expected answer that production traces do not have)"
            )
    if len(set(scorers)) != len(scorers):
        raise ValueError("each scorer may be named once")


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
    _check_scorers(scorers)
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


# -- a trace as a metric example ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    """The text of a span's input/output as stored (a message, a list of chunks or content parts, a string)."""
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


def _question(value: Any) -> str:
    """The last user message of a model call's input ({messages: [...]}, or a list of messages)."""
    messages = value.get("messages") if isinstance(value, dict) else value
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text(message.get("content"))
    return ""


def trace_example(rows: list[Any]) -> Example | None:
    """The example of a trace's spans (rows with kind, input, output, attributes, started_at, ended_at);
    None when no answer was kept."""
    ordered = sorted(rows, key=lambda r: (r.ended_at or r.started_at, r.started_at))
    final = next((r for r in reversed(ordered) if r.kind in ("llm", "cache") and _text(r.output).strip()), None)
    if final is None:
        return None
    calls = [r for r in ordered if r.kind == "llm" and r.input is not None]
    question = next((q for q in (_question(r.input) for r in reversed(calls)) if q), "")
    context: list[str] = []
    for row in ordered:
        if row.kind != "retrieval":
            continue
        context.extend(_chunks(row.output))
        documents = (row.attributes or {}).get("gen_ai.retrieval.documents")
        if row.output is None and isinstance(documents, list):
            context.extend(_chunks(documents))
    return Example(output=_text(final.output), input=question, context=tuple(context))


# -- the pass -----------------------------------------------------------------------------------------------


class OnlineEvaluator:
    """Runs every enabled sampling rule once per `run_once` (blocking: the runner calls it in a thread).

    `embed` replaces the MiniLM embedder of the embedding metrics (tests); metrics are built once per
    evaluator and shared by its rules. `totals` counts, over the evaluator's life, what every pass did."""

    def __init__(self, store: Any, embed: Callable[[list[str]], Any] | None = None) -> None:
        self.store = store
        self._embed = embed
        self._metrics: dict[str, Metric] = {}
        self.totals: Counter[str] = Counter()

    def metric(self, name: str) -> Metric:
        name = ALIASES.get(name, name)
        if name not in self._metrics:
            options: dict[str, Any] = {}
            if self._embed is not None and name in ("groundedness", "answer_relevance"):
                options["embed"] = self._embed
            self._metrics[name] = build_metric(name, options)
        return self._metrics[name]

    def run_once(self, now: float | None = None) -> list[RulePass]:
        """Score the sampled new traces of every enabled rule; what each rule's pass did."""
        now = time.time() if now is None else now
        with self.store.connect() as conn:
            rules = [r for r in list_sampling_rules(conn) if r.enabled]
        reports = []
        for rule in rules:
            try:
                report = self.run_rule(rule, now)
            except Exception:
                log.exception("online evaluation rule %s failed", rule.name)
                continue
            reports.append(report)
            self.totals.update({"considered": report.considered, "scored": report.scored, "written": report.written})
            self.totals.update({f"skipped: {k}": v for k, v in report.skipped.items()})
            if report.sampled or report.skipped:
                log.info("online evaluation %s", report.to_dict())
        return reports

    def _claim(self, rule: SamplingRule, now: float, report: RulePass) -> list[str]:
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
                report.considered += 1
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
            if moved.rowcount != 1:
                report.considered = 0
                report.claimed_elsewhere = True
                return []
            report.sampled = len(chosen)
            return chosen

    def run_rule(self, rule: SamplingRule, now: float) -> RulePass:
        """One pass of one rule (as read from the store: a stale copy loses the compare-and-set)."""
        report = RulePass(rule.name)
        chosen = self._claim(rule, now, report)
        if not chosen:
            return report
        with self.store.connect() as conn:
            capture = content_capture(conn, rule.project_id)
        if capture == "off":
            report.skipped["capture_off"] += len(chosen)
            return report
        for trace_id in chosen:
            self._score_trace(rule, trace_id, report)
        return report

    def _score_trace(self, rule: SamplingRule, trace_id: str, report: RulePass) -> None:
        with self.store.connect() as conn:
            purged = conn.execute(select(traces.c.content_purged_at).where(traces.c.id == trace_id)).scalar()
            rows = conn.execute(
                select(
                    spans.c.kind,
                    spans.c.input,
                    spans.c.output,
                    spans.c.attributes,
                    spans.c.started_at,
                    spans.c.ended_at,
                ).where(spans.c.trace_id == trace_id)
            ).all()
        if purged is not None:
            report.skipped["content_purged"] += 1
            return
        example = trace_example(list(rows))
        if example is None:
            report.skipped["no_answer"] += 1
            return
        results = []
        for scorer in rule.scorers:
            metric = self.metric(scorer)
            score = metric.score(example)
            if score.value is None:
                report.skipped[f"{metric.name}: {score.explanation}"] += 1
                continue
            results.append(score)
        if not results:
            return
        with self.store.begin() as conn:
            for score in results:
                numeric = isinstance(score.value, bool | int | float)
                add_score(
                    conn,
                    project_id=rule.project_id,
                    trace_id=trace_id,
                    name=score.metric,
                    value=(score.value if isinstance(score.value, bool) else float(score.value))  # type: ignore[arg-type]
                    if numeric
                    else None,
                    string_value=None if numeric else str(score.value),
                    source="code",
                    author=f"online-eval:{rule.name}"[:200],
                    comment=score.explanation[:1000],
                )
                report.written += 1
        report.scored += 1
