"""Evaluation cases in a user's own pytest suite: a real `pytest` run (in a subprocess, as a user runs it) of a
test file that parametrizes over a dataset file and asserts metrics; failures carry the metric's explanation,
and the plugin's summary reports each metric's pass rate with an interval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pilothouse.datasets.items import ItemError
from pilothouse.testing import MetricFailed, assert_metric, cases

USER_TESTS = """
import pytest
from pilothouse.testing import assert_metric, cases

ANSWERS = {"parcel": "Track your parcel from the link.", "refund": "Refunds take 30 days.", "hours": "We never close."}

@pytest.mark.parametrize("item", cases("support.jsonl", split="test"))
def test_answers(item):
    answer = ANSWERS[item["id"]]
    assert_metric("contains", answer, expected=item["expected"], ignore_case=True)

def test_length():
    assert_metric("length", "short answer", max_chars=50)
"""


def test_a_users_suite_runs_cases_and_reports_metric_pass_rates(tmp_path: Path) -> None:
    items = [
        {"id": "parcel", "input": {"question": "Where is my parcel?"}, "expected": "parcel", "split": "test"},
        {"id": "refund", "input": {"question": "Refund?"}, "expected": "refund", "split": "test"},
        {"id": "hours", "input": {"question": "Open?"}, "expected": "open", "split": "test"},
        {"id": "train-only", "input": {"question": "x"}, "expected": "x", "split": "train"},
    ]
    (tmp_path / "support.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    (tmp_path / "test_support.py").write_text(USER_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_support.py"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 1, out
    assert "3 passed, 1 failed" in out or "1 failed, 3 passed" in out, out
    assert ("test_answers[hours]" in out and "does not contain" in out.lower()) or "open" in out, out
    assert "pilothouse metrics" in out
    assert "2/3 passed" in out, out


def test_assert_metric_verdicts() -> None:
    assert assert_metric("contains", "Paris is the capital", expected="Paris").passed
    with pytest.raises(MetricFailed) as failed:
        assert_metric("exact_match", "paris", expected="Paris")
    assert failed.value.score.value is False and str(failed.value).startswith("exact_match")
    assert assert_metric("rouge_l", "the cat sat on the mat", expected="the cat sat", threshold=0.5).number
    with pytest.raises(MetricFailed, match=r"is not >= 0\.99"):
        assert_metric("rouge_l", "the cat sat on the mat", expected="a dog ran", threshold=0.99)
    with pytest.raises(MetricFailed, match=r"could not judge|unknown"):
        assert_metric("max_latency_ms", "An answer whose latency nobody measured.", limit=1000)


def test_cases_name_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "ok"}\n{"inptu": "typo"}\n')
    with pytest.raises(ItemError, match="line 2"):
        cases(bad)
