"""Agreement statistics against values published with the methods (or computed by hand)."""

from __future__ import annotations

import math

import pytest

from pilothouse.stats.agreement import cohen_kappa, confusion_matrix, fleiss_kappa, kappa_label, spearman


def test_cohen_kappa_of_the_textbook_table() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    human = ["yes"] * 25 + ["no"] * 25
    judge = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(human, judge) == pytest.approx(0.4)
    confusion = confusion_matrix(human, judge)
    assert confusion.labels == ["no", "yes"] and confusion.counts == [[15, 10], [5, 20]]
    assert kappa_label(0.4) == "fair" and kappa_label(0.85) == "almost perfect"


def test_weighted_kappa_counts_near_misses_as_partial_agreement() -> None:
    human = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    near = [2, 2, 3, 5, 5, 1, 3, 3, 4, 4]
    far = [5, 2, 3, 1, 5, 1, 5, 3, 4, 1]
    assert cohen_kappa(human, near, weights="quadratic") > cohen_kappa(human, far, weights="quadratic")
    assert cohen_kappa(human, human, weights="linear") == pytest.approx(1.0)
    # the same misses count fully without weights
    assert cohen_kappa(human, near) < cohen_kappa(human, near, weights="linear")
    with pytest.raises(ValueError, match="not in the given scale"):
        cohen_kappa([1, 2], [2, 3], labels=[1, 2])


def test_spearman_with_ties() -> None:
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_fleiss_kappa_of_a_stable_and_an_unstable_judge() -> None:
    stable = [["pass"] * 3, ["fail"] * 3, ["pass"] * 3, ["fail", "fail", "pass"]]
    unstable = [["pass", "fail", "pass"], ["fail", "pass", "fail"], ["pass", "fail", "fail"], ["fail", "pass", "pass"]]
    assert fleiss_kappa(stable) > 0.6 > fleiss_kappa(unstable)
    # Fleiss (1971)-style check by hand: 2 items, 2 ratings each, one agreeing and one not -> P_bar 0.5, P_e 0.5
    assert fleiss_kappa([["a", "a"], ["a", "b"]]) == pytest.approx((0.5 - 0.625) / (1 - 0.625))
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([["a", "b"], ["a"]])
