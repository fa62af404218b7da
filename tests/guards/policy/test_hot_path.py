"""The guards' per-call bookkeeping kept cheap without changing what it records: storage redaction that copies
only what it changes and skips texts the call's rules found clean, the deciding rule of a guard span, and the
rule entries' rounding."""

from __future__ import annotations

import random

from pilothouse.guards.policy.engine import (
    DECISION_RANK,
    Decision,
    GuardRun,
    RuleRecord,
    ScannerCache,
    compile_policy,
    evaluate,
)
from pilothouse.guards.policy.loader import parse_policy
from pilothouse.guards.policy.spans import deciding, record_run, rule_entry
from pilothouse.guards.policy.storage import StoragePlan
from pilothouse.guards.scanner import ScanContext
from pilothouse.tracing.model import TraceRecord

CARD = "4111 1111 1111 1111"
POLICY = "name: p\ninput:\n  - {scanner: test_pii, action: redact}\nstorage: {mode: mask, scanners: [test_pii]}\n"


def _plan_and_rules() -> tuple[StoragePlan, ScanContext, object]:
    compiled = compile_policy(parse_policy(POLICY), 1, ScannerCache())
    plan = StoragePlan.of([compiled])
    assert plan is not None
    return plan, ScanContext(), compiled


def test_unchanged_content_is_kept_as_is_and_changed_content_is_a_copy() -> None:
    plan, _, _ = _plan_and_rules()
    clean_value = {"messages": [{"role": "user", "content": "hello"}, {"role": "user", "content": ["a", "b"]}]}
    kinds: set[str] = set()
    assert plan.redact_value(clean_value, kinds) is clean_value and not kinds
    mixed = {"messages": [{"role": "user", "content": "hello"}, {"role": "user", "content": f"card {CARD}"}]}
    out = plan.redact_value(mixed, kinds)
    assert out is not mixed and out["messages"] is not mixed["messages"]
    assert out["messages"][0] is mixed["messages"][0]  # the untouched message is shared, not copied
    assert out["messages"][1]["content"] == "card <CREDIT_CARD>" and kinds == {"CREDIT_CARD"}
    assert mixed["messages"][1]["content"] == f"card {CARD}"  # the caller's value is never written to
    assert plan.redact_value(("x", f"card {CARD}"), set()) == ["x", "card <CREDIT_CARD>"]  # tuples: lists


def test_a_text_every_storage_scanner_found_clean_is_not_scanned_again() -> None:
    plan, ctx, compiled = _plan_and_rules()
    clean: set[tuple[int, str]] = set()
    evaluate(compiled.input, "nothing to see", ctx, clean)  # type: ignore[attr-defined]
    scanned: list[str] = []
    scanner = plan.steps[0][1][0]
    original = scanner.scan

    def counting(text: str, scan_ctx: ScanContext):  # type: ignore[no-untyped-def]
        scanned.append(text)
        return original(text, scan_ctx)

    scanner.scan = counting  # type: ignore[method-assign]
    trace = TraceRecord(project_id="prj", name="chat")
    span = trace.span("llm", "chat")
    span.input = {"messages": [{"role": "user", "content": "nothing to see"}]}
    span.output = {"message": {"role": "assistant", "content": f"card {CARD}"}}
    assert plan.redact_trace(trace, clean) == {"CREDIT_CARD"}
    assert scanned == [f"card {CARD}"]  # only the text the rules had not seen
    assert span.output["message"]["content"] == "card <CREDIT_CARD>"


def _old_deciding(records: list[RuleRecord]) -> RuleRecord:
    return max(records, key=lambda r: (DECISION_RANK[r.decision], r.score if r.decision == "allow" else 0.0))


def test_the_deciding_rule_is_the_one_max_would_pick() -> None:
    compiled = compile_policy(parse_policy(POLICY), 1, ScannerCache())
    rule = compiled.input[0]
    rnd = random.Random(7)
    decisions: list[Decision] = list(DECISION_RANK)
    for _ in range(5000):
        records = [
            RuleRecord(rule, rnd.choice([0.0, 0.2, 0.5, 0.5, 1.0, float("nan")]), 0.1, rnd.choice(decisions))
            for _ in range(rnd.randint(1, 6))
        ]
        assert deciding(records) is _old_deciding(records)


def test_rule_entries_round_scores_and_keep_zero() -> None:
    compiled = compile_policy(parse_policy(POLICY), 1, ScannerCache())
    rule = compiled.input[0]
    assert rule_entry(RuleRecord(rule, 0.0, 0.12345, "allow"))["score"] == 0.0
    entry = rule_entry(RuleRecord(rule, 0.123456, 0.12345, "redact", {"B", "A"}, 2))
    assert entry["score"] == 0.1235 and entry["latency_ms"] == 0.123 and entry["kinds"] == ["A", "B"]
    run = GuardRun()
    run.add_record(RuleRecord(rule, 0.0, 0.5, "allow", set(), 1))
    trace = TraceRecord(project_id="prj", name="chat")
    (span,) = record_run(trace, run)
    attrs = span.attributes
    assert attrs["pilothouse.guard.score"] == 0.0 and attrs["pilothouse.guard.kinds"] == []
    assert attrs["pilothouse.guard.texts"] == 1 and attrs["pilothouse.guard.latency_ms"] == 0.5
    assert attrs["pilothouse.guard.rules"] == [rule_entry(run.records[id(rule)])]
