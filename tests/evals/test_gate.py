"""The regression gate's decision on paired results: it fails on a planted regression, passes on a planted
improvement, and with pure noise fails no more often than its alpha (simulated over many seeds)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from pilothouse.evals.experiments.gate import decide, junit_xml, markdown_report
from pilothouse.evals.experiments.summary import compare
from pilothouse.store.experiments import ResultRow

METRICS = ["contains", "toxicity"]


def _rows(rng: np.random.Generator, n: int, *, shift: float, toxic_shift: float = 0.0) -> list[ResultRow]:
    """Pass/fail `contains` (higher is better) and a toxicity score (lower is better) per item and variant;
    items differ in difficulty, the candidate's pass probability moves by `shift`."""
    rows = []
    difficulty = rng.uniform(0.2, 0.9, n)
    for variant, delta, tox in (("baseline", 0.0, 0.0), ("candidate", shift, toxic_shift)):
        passed = rng.random(n) < np.clip(difficulty + delta, 0, 1)
        toxicity = np.clip(rng.normal(0.1 + tox, 0.05, n), 0, 1)
        for i in range(n):
            scores = {
                "contains": {"value": bool(passed[i]), "passed": bool(passed[i]), "higher_is_better": True},
                "toxicity": {"value": float(toxicity[i]), "passed": None, "higher_is_better": False},
            }
            rows.append(ResultRow(variant, f"i{i}", i, "ok", "out", None, None, None, None, None, None, scores))
    return rows


def _gate(rows: list[ResultRow], *, seed_alpha: float = 0.05, min_effect: float = 0.0) -> bool:
    comparison = compare(rows, "baseline", "candidate", METRICS, alpha=seed_alpha)
    return decide(comparison, METRICS, min_effect=min_effect).passed


def test_planted_regression_fails_and_planted_improvement_passes() -> None:
    rng = np.random.default_rng(11)
    assert not _gate(_rows(rng, 150, shift=-0.3))
    assert _gate(_rows(rng, 150, shift=+0.3))
    # more toxic is worse although the number is higher
    assert not _gate(_rows(rng, 150, shift=0.0, toxic_shift=0.08))
    # a regression smaller than the minimum effect does not fail the gate
    assert _gate(_rows(rng, 400, shift=-0.12), min_effect=0.2)


def test_pure_noise_fails_at_most_at_alpha() -> None:
    rng = np.random.default_rng(5)
    runs = 300
    false_failures = sum(not _gate(_rows(rng, 40, shift=0.0)) for _ in range(runs))
    # two gated metrics, two-sided tests, Holm: the family-wise false failure rate is at most alpha / 2 = 2.5%
    assert false_failures / runs <= 0.05, false_failures / runs


def test_a_metric_that_could_not_be_compared_fails_the_gate() -> None:
    rows = _rows(np.random.default_rng(1), 20, shift=0.0)
    comparison = compare(rows, "baseline", "candidate", [*METRICS, "groundedness"])
    result = decide(comparison, [*METRICS, "groundedness"])
    assert not result.passed and result.failures == [
        "groundedness: could not be compared (no item judged numerically for both variants)"
    ]


def test_report_and_junit_name_the_failing_metric() -> None:
    rows = _rows(np.random.default_rng(3), 200, shift=-0.35)
    comparison = compare(rows, "baseline", "candidate", METRICS)
    result = decide(comparison, METRICS)
    report = markdown_report(result, comparison, run_id="exp_1", dataset="qa@2")
    assert report.startswith("## Evaluation gate FAILED: candidate vs baseline")
    assert "| contains | 200 |" in report and "- contains: worse by" in report
    assert all(line.count("|") == 8 for line in report.splitlines() if line.startswith("| "))
    root = ET.fromstring(junit_xml(result, comparison).split("\n", 1)[1])
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == set(METRICS)
    assert cases["contains"].find("failure") is not None and cases["toxicity"].find("failure") is None
    assert root.get("failures") == "1"
