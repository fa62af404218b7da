"""A metric over time: the runs of a dataset, per variant, each with its mean and interval, and whether it
changed significantly since the run before.

A series is one variant name followed across runs (the name a team gives the release it tracks: `production`,
`candidate`), oldest first. Two consecutive points on the same dataset version scored the same items, so they
are compared paired by item exactly like two variants of one run (`summary.compare`: sign-flip permutation
p-value, interval of the difference, effect size); the p-values of a series' steps are then corrected for their
number (Holm by default), so a long history does not flag a change by luck. A step across dataset versions is not
tested (different items: the means are shown, the change is not judged), nor is a step without an item judged in
both runs.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pilothouse.evals.experiments.summary import compare, summarise
from pilothouse.stats.multiple import adjust
from pilothouse.store.experiments import ResultRow

__all__ = ["RunPoint", "metric_history"]


@dataclass(frozen=True, slots=True)
class RunPoint:
    """One variant of one finished run that measured the metric."""

    experiment_id: str
    name: str
    created_at: float
    dataset_version: int
    variant: str
    target: str
    """What the variant ran: `prompt NAME@REF`, `model NAME` or `function LABEL`."""
    metric_key: str
    rows: Sequence[ResultRow]


def _step(before: RunPoint, after: RunPoint) -> dict[str, Any]:
    if before.dataset_version != after.dataset_version:
        return {
            "since": before.experiment_id,
            "note": f"dataset version changed ({before.dataset_version} -> {after.dataset_version}): not compared",
        }
    rows = [
        dataclasses.replace(r, variant="before", scores={"m": r.scores.get(before.metric_key)}) for r in before.rows
    ]
    rows += [dataclasses.replace(r, variant="after", scores={"m": r.scores.get(after.metric_key)}) for r in after.rows]
    rows = [r for r in rows if r.scores["m"] is not None]
    entry = compare(rows, "before", "after", ["m"], correction="none")["metrics"][0]
    entry.pop("metric")
    return {"since": before.experiment_id, **entry}


def metric_history(
    points: Sequence[RunPoint], *, correction: str = "holm", alpha: float = 0.05
) -> list[dict[str, Any]]:
    """The series of `points` (any order), per variant name, with a tested change at every step."""
    by_variant: dict[str, list[RunPoint]] = defaultdict(list)
    for point in sorted(points, key=lambda p: (p.created_at, p.experiment_id)):
        by_variant[point.variant].append(point)
    series = []
    for variant, found in sorted(by_variant.items()):
        entries = []
        for index, point in enumerate(found):
            summary = summarise(point.rows, [point.variant], [point.metric_key])[point.variant]["metrics"]
            entries.append(
                {
                    "experiment_id": point.experiment_id,
                    "name": point.name,
                    "created_at": point.created_at,
                    "dataset_version": point.dataset_version,
                    "target": point.target,
                    "metric_key": point.metric_key,
                    **summary[point.metric_key],
                    "change": None if index == 0 else _step(found[index - 1], point),
                }
            )
        tested = [e["change"] for e in entries if e["change"] is not None and "p_value" in e["change"]]
        for change, p in zip(tested, adjust([c["p_value"] for c in tested], correction), strict=True):
            change["p_adjusted"] = p
            difference = change["difference"]["estimate"]
            if p >= alpha or difference == 0:
                change["verdict"] = "no significant change"
            else:
                change["verdict"] = "better" if (difference > 0) == change["higher_is_better"] else "worse"
            change["flagged"] = change["verdict"] != "no significant change"
        series.append(
            {
                "variant": variant,
                "points": entries,
                "flagged": [e["experiment_id"] for e in entries if e["change"] and e["change"].get("flagged")],
            }
        )
    return series
