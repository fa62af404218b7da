"""Evaluation cases in your own pytest suite (docs/evaluation.md#pytest).

    from pilothouse.testing import assert_metric, cases

    @pytest.mark.parametrize("item", cases("tests/data/support.jsonl", split="test"))
    def test_support_answers(item):
        answer = my_app(item["input"]["question"])
        assert_metric("contains", answer, expected=item["expected"], ignore_case=True)
        assert_metric("max_tokens", answer, value=200, output_tokens=len(answer.split()))

`assert_metric` scores one answer with any registered metric and fails the test with the metric's explanation when
the answer does not pass (or its score is under `threshold`); a metric that cannot judge the answer fails it too,
rather than passing silently. The pytest plugin (installed with the package) adds a summary of every metric's
pass rate with a 95% interval at the end of the run.
"""

from pilothouse.testing.asserts import MetricFailed, assert_metric, recorded
from pilothouse.testing.cases import cases

__all__ = ["MetricFailed", "assert_metric", "cases", "recorded"]
