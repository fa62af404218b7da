"""`experiment_progress.progress`: per run, results done and in error and the answers' cost, in one grouped query,
on both backends (the cost is summed in pico-dollars, exactly)."""

from __future__ import annotations

from decimal import Decimal

from pilothouse.datasets.items import validate_items
from pilothouse.store.datasets import push_version
from pilothouse.store.engine import Store
from pilothouse.store.experiment_progress import Progress, progress
from pilothouse.store.experiments import ResultRow, create_experiment, save_result, spent
from pilothouse.store.projects import create_project


def result(item: str, status: str, cost: str | None) -> ResultRow:
    output, error = ("ok", None) if status == "ok" else (None, "boom")
    money = None if cost is None else Decimal(cost)
    return ResultRow("v", item, 0, status, output, error, None, 1.0, 1, 1, money, {})


def test_progress_counts_and_sums_per_experiment(store: Store) -> None:
    with store.begin() as conn:
        project = create_project(conn, "p")
        items = validate_items([{"id": "a", "input": "q"}])
        dataset = push_version(conn, project_id=project.id, name="d", items=items, actor=None).dataset
        made = [
            create_experiment(
                conn,
                project_id=project.id,
                name=f"run{n}",
                dataset_id=dataset.id,
                dataset_version=1,
                spec={},
                item_count=3,
                estimate_usd=None,
                max_cost_usd=None,
                actor=None,
            )
            for n in range(3)
        ]
        first, second, empty = (e.id for e in made)
        save_result(conn, first, result("a", "ok", "0.000009"))
        save_result(conn, first, result("b", "ok", "0.000000000001"))
        save_result(conn, first, result("c", "error", None))
        save_result(conn, second, result("a", "error", "1.5"))
    with store.connect() as conn:
        found = progress(conn, [first, second, empty])
        assert progress(conn, []) == {}
    assert found[first] == Progress(2, 1, Decimal("0.000009000001"))
    assert found[second] == Progress(0, 1, Decimal("1.5"))
    assert found[empty] == Progress(0, 0, Decimal(0))
    with store.connect() as conn:  # what a resumed run seeds its cost cap with: exact, not cut to whole dollars
        assert spent(conn, first) == Decimal("0.000009000001")
        assert spent(conn, second) == Decimal("1.5")
        assert spent(conn, empty) == Decimal(0)
