"""`metric_history` on planted series: consecutive runs on one dataset version are compared paired by item, a
planted drop is flagged worse, noise is not, a version change is shown but not tested, and the p-values of a
series are corrected for its number of steps."""

from __future__ import annotations

import random

from pilothouse.evals.experiments.history import RunPoint, metric_history
from pilothouse.store.experiments import ResultRow


def _point(run: str, at: float, values: list[float], *, version: int = 1, variant: str = "prod") -> RunPoint:
    rows = [
        ResultRow(variant, f"i{n}", n, "ok", "x", None, None, None, None, None, None, {"score": {"value": v}})
        for n, v in enumerate(values)
    ]
    return RunPoint(run, run, at, version, variant, "model m", "score", rows)


def test_a_planted_drop_is_flagged_and_noise_is_not() -> None:
    noise = random.Random(7)
    base = [0.8 + noise.uniform(-0.05, 0.05) for _ in range(30)]
    again = [v + noise.uniform(-0.01, 0.01) for v in base]
    dropped = [v - 0.3 for v in base]
    (series,) = metric_history(
        [_point("r3", 3.0, dropped), _point("r1", 1.0, base), _point("r2", 2.0, again)]
    )  # any order in, oldest first out
    first, second, third = series["points"]
    assert [p["experiment_id"] for p in series["points"]] == ["r1", "r2", "r3"]
    assert first["change"] is None
    assert second["change"]["verdict"] == "no significant change" and not second["change"]["flagged"]
    assert third["change"]["verdict"] == "worse" and third["change"]["since"] == "r2"
    assert third["change"]["difference"]["estimate"] < -0.25 and third["change"]["n"] == 30
    assert third["change"]["p_adjusted"] >= third["change"]["p_value"]  # Holm over the series' two steps
    assert series["flagged"] == ["r3"]


def test_a_new_dataset_version_is_not_compared_and_variants_are_separate_series() -> None:
    series = metric_history(
        [
            _point("r1", 1.0, [1.0] * 10),
            _point("r2", 2.0, [0.0] * 10, version=2),
            _point("r1", 1.0, [0.5] * 10, variant="cand"),
        ],
    )
    assert [s["variant"] for s in series] == ["cand", "prod"]
    change = series[1]["points"][1]["change"]
    assert "dataset version changed (1 -> 2)" in change["note"] and "p_value" not in change
    assert series[1]["flagged"] == []


def test_unjudged_items_are_left_out_of_a_step() -> None:
    before = _point("r1", 1.0, [1.0] * 8)
    after = _point("r2", 2.0, [1.0] * 8)
    for row in after.rows[:3]:
        row.scores["score"] = {"value": None}
    (series,) = metric_history([before, after])
    assert series["points"][1]["change"]["n"] == 5
