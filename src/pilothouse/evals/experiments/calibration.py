"""How far to trust a judge: its agreement with people on the same items.

People's labels come from the dataset's items (`metadata.<label>`: true/false, a category, or a number, e.g. a
labelled set such as HaluEval) or from an annotation queue in which people scored the run's results. For a
boolean or categorical label the judge's verdict (`passed`, or its category) is compared item by item:
accuracy, Cohen's kappa (agreement beyond chance) with Landis and Koch's word for it, and the confusion matrix.
For a numeric label: Spearman's rank correlation with the judge's value. Items the judge could not judge, or
people did not label, are counted and left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pilothouse.stats.agreement import cohen_kappa, confusion_matrix, kappa_label, spearman
from pilothouse.store.experiments import ResultRow

__all__ = ["calibrate", "item_labels"]


def _judge_label(score: Mapping[str, Any]) -> Any:
    if score.get("passed") is not None:
        return bool(score["passed"])
    return score.get("value")


def item_labels(items: Mapping[str, dict[str, Any]], key: str) -> Callable[[ResultRow], Any]:
    """People's label of a result from its item's `metadata[key]`."""
    return lambda row: (items.get(row.item_id, {}).get("metadata") or {}).get(key)


def calibrate(rows: Sequence[ResultRow], labels: Callable[[ResultRow], Any], metric: str, label: str) -> dict[str, Any]:
    human: list[Any] = []
    judged: list[Any] = []
    unjudged = unlabelled = 0
    for row in rows:
        if row.status != "ok" or metric not in row.scores:
            continue
        score = row.scores[metric]
        person = labels(row)
        if person is None:
            unlabelled += 1
            continue
        if score.get("value") is None:
            unjudged += 1
            continue
        human.append(person)
        judged.append(score)
    out: dict[str, Any] = {
        "metric": metric,
        "label": label,
        "n": len(human),
        "unjudged": unjudged,
        "unlabelled": unlabelled,
    }
    if not human:
        return {**out, "note": f"no item has both a judgement and a person's label ({label})"}
    numeric = all(isinstance(h, int | float) and not isinstance(h, bool) for h in human)
    if numeric:
        values = [float(s["value"]) for s in judged if isinstance(s["value"], int | float)]
        if len(values) != len(human) or len(values) < 2:
            return {**out, "note": "a numeric label needs numeric judgements on at least two items"}
        return {**out, "kind": "numeric", "spearman": spearman(human, values)}
    people = [str(h).lower() if not isinstance(h, bool) else h for h in human]
    judge = [_judge_label(s) for s in judged]
    judge = [str(j).lower() if not isinstance(j, bool) else j for j in judge]
    confusion = confusion_matrix(people, judge)
    kappa = cohen_kappa(people, judge)
    agree = sum(1 for p, j in zip(people, judge, strict=True) if p == j)
    return {
        **out,
        "kind": "categorical",
        "accuracy": agree / len(people),
        "kappa": kappa,
        "kappa_reading": kappa_label(kappa),
        "confusion": {"rows": "people", "columns": "judge", **confusion.to_dict()},
    }
