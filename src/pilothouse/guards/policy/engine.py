"""Running policies: build each policy's scanners once, run its rules over a text, and combine the verdicts.

`compile_policy` turns a validated `Policy` at a version into a `CompiledPolicy` whose rules hold built
scanners (shared through a `ScannerCache`: two policies with the same scanner and options share one instance,
so a model loads once). `evaluate` runs the rules of one direction over one text, in order: a redact hit
replaces the text the later rules see, the first enforced block hit stops the evaluation, flag and shadow hits
are only recorded. Each rule's outcome is a `RuleRecord`; `GuardRun` merges the records of the several texts
of a call (its messages) into one per rule, which the stages record as `guard` spans (`spans.py`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pilothouse.config import ConfigError
from pilothouse.errors import ApiError
from pilothouse.guards.policy.loader import PolicyError
from pilothouse.guards.policy.masking import replace_spans
from pilothouse.guards.policy.model import Policy, Rule
from pilothouse.guards.registry import build_scanner
from pilothouse.guards.scanner import Direction, ScanContext, Scanner, Verdict

Decision = Literal["allow", "block", "redact", "flag", "shadow"]
"""What a rule did with one call: nothing (`allow`, below its threshold), or its action; `shadow`: a hit that
was only recorded (the rule's action is `shadow`, or its policy is in shadow mode)."""


class ScannerCache:
    """Built scanners by (name, options): one instance per distinct configuration, shared by policies."""

    def __init__(self) -> None:
        self._built: dict[tuple[str, str], Scanner] = {}
        self._lock = threading.Lock()

    def get(self, name: str, options: Mapping[str, Any]) -> Scanner:
        """The scanner `name` built with `options`; ConfigError for an unknown scanner or bad options."""
        key = (name, json.dumps(options, sort_keys=True, default=str))
        with self._lock:
            found = self._built.get(key)
        if found is not None:
            return found
        built = build_scanner(name, options)  # outside the lock: a model may take a while to load
        with self._lock:
            return self._built.setdefault(key, built)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """A rule of a policy version, with its scanner built."""

    policy: str
    version: int
    shadow_mode: bool
    direction: Direction
    index: int
    rule: Rule
    scanner: Scanner

    @property
    def label(self) -> str:
        return f"{self.policy}@{self.version} {self.direction}[{self.index}] {self.rule.scanner}"


@dataclass(frozen=True, slots=True, eq=False)
class CompiledPolicy:
    """A policy version ready to run."""

    policy: Policy
    version: int
    input: tuple[CompiledRule, ...]
    output: tuple[CompiledRule, ...]
    storage: tuple[Scanner, ...]

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def ref(self) -> str:
        return f"{self.policy.name}@{self.version}"

    def rules(self, direction: Direction) -> tuple[CompiledRule, ...]:
        return self.input if direction == "input" else self.output


def compile_policy(policy: Policy, version: int, cache: ScannerCache) -> CompiledPolicy:
    """Build the scanners of `policy` (from the cache when already built); PolicyError for bad options."""
    shadow = policy.mode == "shadow"

    def build(name: str, options: Mapping[str, Any], where: str) -> Scanner:
        try:
            return cache.get(name, options)
        except ConfigError as exc:
            raise PolicyError(str(exc), field=where) from None
        except ImportError as exc:  # a registered scanner whose module is missing or broken
            raise PolicyError(f"scanner {name!r} cannot be loaded: {exc}", field=where) from None

    compiled = {
        direction: tuple(
            CompiledRule(
                policy.name, version, shadow, direction, i, rule, build(rule.scanner, rule.options, f"{direction}[{i}]")
            )
            for i, rule in enumerate(policy.input if direction == "input" else policy.output)
        )
        for direction in ("input", "output")
    }
    storage = policy.storage
    kept = (
        ()
        if storage is None
        else tuple(
            build(name, storage.options.get(name, {}), f"storage.scanners[{i}]")
            for i, name in enumerate(storage.scanners)
        )
    )
    return CompiledPolicy(policy, version, compiled["input"], compiled["output"], kept)


@dataclass(slots=True)
class RuleRecord:
    """What one rule found and did over the texts of one call (merged: the highest score, the summed time)."""

    rule: CompiledRule
    score: float = 0.0
    latency_ms: float = 0.0
    decision: Decision = "allow"
    kinds: set[str] = field(default_factory=set)
    texts: int = 0

    def merge(self, other: RuleRecord) -> None:
        self.score = max(self.score, other.score)
        self.latency_ms += other.latency_ms
        self.kinds |= other.kinds
        self.texts += other.texts
        if DECISION_RANK[other.decision] > DECISION_RANK[self.decision]:
            self.decision = other.decision

    @property
    def would(self) -> str | None:
        """The action a shadow hit would have taken (None when the rule's own action is `shadow`)."""
        action = self.rule.rule.action
        return action if self.decision == "shadow" and action != "shadow" else None


DECISION_RANK: dict[Decision, int] = {"allow": 0, "shadow": 1, "flag": 2, "redact": 3, "block": 4}


@dataclass(slots=True)
class Evaluation:
    """The rules of one direction run over one text."""

    text: str
    """The text after the redact hits (the original when none)."""
    records: list[RuleRecord]
    blocked: RuleRecord | None = None


def _decide(rule: CompiledRule, verdict: Verdict) -> Decision:
    threshold = rule.rule.threshold
    if verdict.score <= 0.0 or verdict.score < threshold:
        return "allow"
    if rule.shadow_mode or rule.rule.action == "shadow":
        return "shadow"
    return rule.rule.action  # block, redact or flag here


def evaluate(
    rules: Iterable[CompiledRule], text: str, ctx: ScanContext, clean: set[tuple[int, str]] | None = None
) -> Evaluation:
    """Run `rules` in order over `text` (CPU work: the caller decides whether it runs in a thread). `clean`, when
    given, collects (id of the scanner, text) for each text a scanner found nothing in, and for a scanner's own
    redaction of a text (what it masked is gone): storage redaction skips those (storage.py)."""
    out = Evaluation(text, [])
    records = out.records
    track = clean if ctx.mode == "direct" else None
    clock = time.perf_counter
    for rule in rules:
        started = clock()
        verdict = rule.scanner.scan(out.text, ctx)
        findings = verdict.findings
        if track is not None:
            if not findings:
                track.add((id(rule.scanner), out.text))
            elif verdict.redacted is not None:
                track.add((id(rule.scanner), verdict.redacted))
        elapsed = (clock() - started) * 1000.0
        decision = _decide(rule, verdict)
        record = RuleRecord(
            rule, float(verdict.score), elapsed, decision, {f.kind for f in findings} if findings else set(), 1
        )
        records.append(record)
        if decision == "redact" and verdict.redacted is not None:
            out.text = verdict.redacted
        elif decision == "redact" and verdict.findings:  # loader.SPAN_MASKED scanners: `[KIND]` per finding
            out.text = replace_spans(out.text, verdict.findings, hashed=False)
        elif decision == "block":
            out.blocked = record
            break
    return out


class GuardRun:
    """The records of every rule of one direction over every text of a call, merged per rule."""

    def __init__(self) -> None:
        self.records: dict[int, RuleRecord] = {}
        self.blocked: RuleRecord | None = None

    def add(self, evaluation: Evaluation) -> None:
        for record in evaluation.records:
            self.add_record(record)
        if evaluation.blocked is not None and self.blocked is None:
            self.blocked = self.records[id(evaluation.blocked.rule)]

    def add_record(self, record: RuleRecord) -> None:
        key = id(record.rule)
        known = self.records.get(key)
        if known is None:
            self.records[key] = RuleRecord(
                record.rule, record.score, record.latency_ms, record.decision, set(record.kinds), record.texts
            )
        else:
            known.merge(record)


class GuardBlocked(ApiError):
    """A call or an answer refused by a policy: 400 `guard_blocked`, naming the rule and the policy version,
    never the content that triggered it."""

    status = 400
    type = "invalid_request_error"

    def __init__(self, record: RuleRecord) -> None:
        rule = record.rule
        what = "request" if rule.direction == "input" else "answer"
        super().__init__(
            f"The {what} was blocked by guard policy '{rule.policy}' (version {rule.version}): "
            f"{rule.direction} rule {rule.index} ({rule.rule.scanner}) scored {record.score:.2f}, "
            f"at or above its threshold {rule.rule.threshold:g}.",
            code="guard_blocked",
        )
        self.record = record

    def body(self) -> dict[str, Any]:
        body = super().body()
        rule = self.record.rule
        body["error"]["guard"] = {
            "policy": rule.policy,
            "version": rule.version,
            "direction": rule.direction,
            "rule": rule.index,
            "scanner": rule.rule.scanner,
            "score": round(self.record.score, 4),
            "threshold": rule.rule.threshold,
            "kinds": sorted(self.record.kinds),
        }
        return body


def applicable(
    policies: Sequence[CompiledPolicy], *, key_id: str | None, model: str | None, prompt: str | None, route: str
) -> tuple[CompiledPolicy, ...]:
    """The policies whose scope matches a call, in name order."""
    return tuple(p for p in policies if p.policy.scope.matches(key_id=key_id, model=model, prompt=prompt, route=route))
