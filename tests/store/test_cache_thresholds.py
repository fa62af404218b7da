"""Per-project cache thresholds on SQLite and PostgreSQL: set, replace, read, clear, range, the project's key."""

from __future__ import annotations

import math

import pytest
from sqlalchemy.exc import IntegrityError

from pilothouse.store.cache_thresholds import (
    MAX_THRESHOLD,
    MIN_THRESHOLD,
    check_threshold,
    clear_threshold,
    get_threshold,
    list_thresholds,
    set_threshold,
)
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project


def test_set_replace_read_and_clear(store: Store) -> None:
    with store.begin() as conn:
        alpha, beta = create_project(conn, "alpha").id, create_project(conn, "beta").id
        first, previous = set_threshold(conn, project_id=alpha, threshold=0.88, actor="key_a")
        assert previous is None and first.threshold == 0.88 and first.updated_by == "key_a"
    with store.begin() as conn:
        second, previous = set_threshold(conn, project_id=alpha, threshold=0.95, actor="key_b")
        assert previous == first
        set_threshold(conn, project_id=beta, threshold=0.5, actor=None)
    with store.connect() as conn:
        assert get_threshold(conn, alpha) == second
        assert second.to_dict() == {
            "project_id": alpha,
            "threshold": 0.95,
            "updated_at": second.updated_at,
            "updated_by": "key_b",
        }
        assert sorted((o.project_id, o.threshold) for o in list_thresholds(conn)) == sorted(
            [(alpha, 0.95), (beta, 0.5)]
        )
    with store.begin() as conn:
        assert clear_threshold(conn, alpha) == second
        assert clear_threshold(conn, alpha) is None  # nothing left to clear
    with store.connect() as conn:
        assert get_threshold(conn, alpha) is None
        assert [o.project_id for o in list_thresholds(conn)] == [beta]


@pytest.mark.parametrize("bad", [0.49, 1.01, -1.0, math.nan, math.inf, True])
def test_out_of_range_is_refused_before_the_database(store: Store, bad: float) -> None:
    with store.begin() as conn:
        project = create_project(conn, "ranged").id
        with pytest.raises(ValueError, match="threshold"):
            set_threshold(conn, project_id=project, threshold=bad, actor=None)
    with store.connect() as conn:
        assert get_threshold(conn, project) is None


def test_the_bounds_themselves_are_allowed() -> None:
    assert check_threshold(MIN_THRESHOLD) == 0.5 and check_threshold(MAX_THRESHOLD) == 1.0
    assert check_threshold(1) == 1.0 and isinstance(check_threshold(1), float)


def test_a_threshold_belongs_to_an_existing_project(store: Store) -> None:
    with pytest.raises(IntegrityError), store.begin() as conn:
        set_threshold(conn, project_id="proj_missing", threshold=0.9, actor=None)
