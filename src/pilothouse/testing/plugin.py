"""The pytest plugin (entry point `pytest11`): at the end of a run that used `assert_metric`, a summary per
metric of how many answers passed, with a 95% interval of the pass rate, so a suite of evaluation cases reads as
a measurement and not only as red and green."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pilothouse.testing.asserts import recorded


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    found = recorded()
    if not found:
        return
    from pilothouse.stats.bootstrap import bootstrap_interval

    by_metric: dict[str, list[bool]] = defaultdict(list)
    for label, _, ok in found:
        by_metric[label].append(ok)
    terminalreporter.section("pilothouse metrics")
    for label, outcomes in sorted(by_metric.items()):
        rate = bootstrap_interval([1.0 if ok else 0.0 for ok in outcomes], seed=0)
        terminalreporter.write_line(
            f"{label}: {sum(outcomes)}/{len(outcomes)} passed "
            f"({rate.estimate:.1%}, 95% interval {rate.low:.1%} to {rate.high:.1%})"
        )
