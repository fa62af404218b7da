"""A judge's agreement with people's labels, from stored results and the items' metadata."""

from __future__ import annotations

import pytest

from pilothouse.evals.experiments.calibration import calibrate, item_labels
from pilothouse.store.experiments import ResultRow


def _row(item: str, value: float | None, passed: bool | None) -> ResultRow:
    score = {"value": value, "passed": passed, "explanation": "", "details": {}}
    return ResultRow("a", item, 0, "ok", "out", None, None, None, None, None, None, {"judge": score})


def test_boolean_labels_give_kappa_and_the_confusion_matrix() -> None:
    # people: 6 good, 4 bad; the judge passes 5 of the good and 2 of the bad
    verdicts = [True] * 5 + [False] + [True] * 2 + [False] * 2
    human = [True] * 6 + [False] * 4
    rows = [_row(f"i{n}", 0.8 if v else 0.2, v) for n, v in enumerate(verdicts)]
    rows.append(_row("i10", None, None))  # not judged
    rows.append(_row("i11", 0.9, True))  # not labelled
    items = {f"i{n}": {"metadata": {"human": h}} for n, h in enumerate(human)} | {"i10": {"metadata": {"human": True}}}
    found = calibrate(rows, item_labels(items, "human"), "judge", "metadata.human")
    assert (found["n"], found["unjudged"], found["unlabelled"]) == (10, 1, 1)
    assert found["accuracy"] == pytest.approx(0.7)
    # p_o 0.7; p_e = 0.6*0.7 + 0.4*0.3 = 0.54; kappa = 0.16 / 0.46
    assert found["kappa"] == pytest.approx(0.16 / 0.46) and found["kappa_reading"] == "fair"
    assert found["confusion"]["labels"] == ["False", "True"]
    assert found["confusion"]["counts"] == [[2, 2], [1, 5]]


def test_numeric_labels_give_spearman() -> None:
    rows = [_row(f"i{n}", v, None) for n, v in enumerate([0.1, 0.4, 0.5, 0.9])]
    items = {f"i{n}": {"metadata": {"rating": r}} for n, r in enumerate([1, 2, 4, 5])}
    assert calibrate(rows, item_labels(items, "rating"), "judge", "metadata.rating")["spearman"] == pytest.approx(1.0)


def test_nothing_to_compare_is_said() -> None:
    found = calibrate([_row("i0", 0.5, True)], item_labels({}, "human"), "judge", "metadata.human")
    assert found["n"] == 0 and "metadata.human" in found["note"]
