"""Dataset versions in the store, on SQLite and PostgreSQL: a push is a version, the same list again is not,
items are stored once per dataset, and a version's items come back in order and by split."""

from __future__ import annotations

from sqlalchemy import func, select

from pilothouse.datasets.items import validate_items
from pilothouse.store import datasets as repo
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.tables import dataset_items


def _items(n: int, *, split_every: int = 0) -> list[dict[str, object]]:
    raw = [
        {"id": f"q{i}", "input": {"question": f"question {i}"}, "expected": str(i)}
        | ({"split": "test"} if split_every and i % split_every == 0 else {})
        for i in range(n)
    ]
    return validate_items(raw)


def test_versions_are_numbered_idempotent_and_share_items(store: Store) -> None:
    with store.begin() as conn:
        project = create_project(conn, "datasets-a").id
        first = repo.push_version(conn, project_id=project, name="qa", items=_items(600), actor="k1", message="m1")
        again = repo.push_version(conn, project_id=project, name="qa", items=_items(600), actor="k1")
        grown = repo.push_version(conn, project_id=project, name="qa", items=_items(603, split_every=100), actor="k2")
    assert (first.created, first.version.version, first.version.item_count) == (True, 1, 600)
    assert (again.created, again.version.version) == (False, 1)
    assert (grown.created, grown.version.version, grown.version.splits) == (True, 2, {"test": 7})
    with store.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(dataset_items)).scalar_one()
        # 600 of v1, 3 new ones (q600 among them, in `test`), and the 6 old ones whose `split` changed
        assert stored == 609
        v1 = repo.get_version(conn, first.dataset.id, 1)
        assert v1 is not None
        items = repo.version_items(conn, v1.id)
        assert [i["id"] for i in items] == [f"q{i}" for i in range(600)]
        assert (
            repo.version_items(conn, grown.version.id, split="test", offset=2, limit=3)
            == [i for i in _items(603, split_every=100) if i.get("split") == "test"][2:5]
        )
        listed = repo.list_datasets(conn, project)
        assert [(d.name, v.version, v.item_count) for d, v in listed] == [("qa", 2, 603)]
        assert [v.version for v in repo.list_versions(conn, first.dataset.id)] == [2, 1]
        assert repo.get_dataset(conn, "another-project", "qa") is None
