"""The regression gate: does the candidate do significantly worse than the baseline on a gated metric?

The decision reads a paired comparison (`summary.compare`): a gated metric fails the gate when its verdict is
`worse` (the Holm-adjusted p-value under alpha, in the metric's bad direction) and the difference is at least
`min_effect` in size; a metric that could not be compared (no item judged for both) fails it too, since a gate
that cannot see must not pass. With no real difference the chance of a false failure is at most alpha/2 across
all gated metrics (the test is two-sided and Holm holds the family-wise rate), which
tests/evals/test_gate.py checks by simulation. The report is Markdown for a pull request comment; JUnit XML has
one test case per gated metric for CI.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GateResult", "decide", "junit_xml", "markdown_report"]


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    failures: list[str] = field(default_factory=list)
    """One line per gated metric that failed, saying why."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    """The comparison's entries of the gated metrics."""


def decide(comparison: dict[str, Any], gated: Sequence[str], *, min_effect: float = 0.0) -> GateResult:
    by_name = {m["metric"]: m for m in comparison["metrics"]}
    failures: list[str] = []
    shown: list[dict[str, Any]] = []
    for name in gated:
        entry = by_name.get(name)
        if entry is None or "p_value" not in entry:
            failures.append(f"{name}: could not be compared ({entry.get('note') if entry else 'not measured'})")
            shown.append(entry or {"metric": name, "n": 0})
            continue
        shown.append(entry)
        size = abs(float(entry["difference"]["estimate"]))
        if entry["verdict"] == "worse" and size >= min_effect:
            d = entry["difference"]
            failures.append(
                f"{name}: worse by {size:.4f} (95% interval {d['low']:.4f} to {d['high']:.4f}; "
                f"p = {entry['p_adjusted']:.4g} after {comparison['correction']} correction; n = {entry['n']})"
            )
    return GateResult(not failures, failures, shown)


def _row(entry: dict[str, Any]) -> str:
    if "p_value" not in entry:
        return f"| {entry['metric']} | {entry.get('n', 0)} | | | | | not compared |"
    d = entry["difference"]
    return (
        f"| {entry['metric']} | {entry['n']} | {entry['baseline_mean']:.3f} | {entry['candidate_mean']:.3f} | "
        f"{d['estimate']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] | {entry['p_adjusted']:.4f} | {entry['verdict']} |"
    )


def markdown_report(result: GateResult, comparison: dict[str, Any], *, run_id: str, dataset: str) -> str:
    head = "passed" if result.passed else "FAILED"
    lines = [
        f"## Evaluation gate {head}: {comparison['candidate']} vs {comparison['baseline']}",
        "",
        f"Dataset `{dataset}`, run `{run_id}`; paired by item, p-values {comparison['correction']}-adjusted, "
        f"alpha {comparison['alpha']}.",
        "",
        "| metric | items | baseline | candidate | difference [95% CI] | p (adjusted) | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(_row(m) for m in result.metrics),
    ]
    if result.failures:
        lines += ["", "Failed:", *(f"- {f}" for f in result.failures)]
    return "\n".join(lines) + "\n"


def junit_xml(result: GateResult, comparison: dict[str, Any]) -> str:
    title = f"eval gate {comparison['candidate']} vs {comparison['baseline']}"
    failed = {f.split(":", 1)[0] for f in result.failures}
    counts = {"tests": str(len(result.metrics)), "failures": str(len(failed)), "errors": "0", "time": "0"}
    root = ET.Element("testsuites", {"name": title, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": title, "skipped": "0", **counts})
    for entry in result.metrics:
        case = ET.SubElement(suite, "testcase", name=str(entry["metric"]), classname=title, time="0")
        if entry["metric"] in failed:
            message = next(f for f in result.failures if f.startswith(f"{entry['metric']}:"))
            ET.SubElement(case, "failure", message=message, type="Regression").text = message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
