"""Datasets, their immutable numbered versions and items (tables `datasets`, `dataset_versions`,
`dataset_items`, `dataset_version_items`).

Plain reads and writes on a Connection. Pushing an item list whose hash equals the latest version's makes no
version (idempotent); any other list becomes version N+1. Items are stored once per dataset by content hash.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from pilothouse.datasets.items import content_hash, version_hash
from pilothouse.store.ids import new_id
from pilothouse.store.tables import dataset_items, dataset_version_items, dataset_versions, datasets

__all__ = [
    "DatasetRow",
    "Pushed",
    "VersionRow",
    "get_dataset",
    "get_version",
    "latest_version",
    "list_datasets",
    "list_versions",
    "push_version",
    "version_items",
]

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class DatasetRow:
    id: str
    project_id: str
    name: str
    description: str | None
    created_at: float
    created_by: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: str
    dataset_id: str
    version: int
    content_hash: str
    item_count: int
    splits: dict[str, int]
    message: str | None
    author: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "content_hash": self.content_hash,
            "item_count": self.item_count,
            "splits": self.splits,
            "message": self.message,
            "author": self.author,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Pushed:
    dataset: DatasetRow
    version: VersionRow
    created: bool
    """False: the item list equals the latest version's (no new version)."""


def _dataset(row: Any) -> DatasetRow:
    return DatasetRow(row.id, row.project_id, row.name, row.description, row.created_at, row.created_by, row.updated_at)


def _version(row: Any) -> VersionRow:
    return VersionRow(
        row.id,
        row.dataset_id,
        int(row.version),
        row.content_hash,
        int(row.item_count),
        dict(row.splits or {}),
        row.message,
        row.author,
        row.created_at,
    )


def get_dataset(conn: Connection, project_id: str, name: str) -> DatasetRow | None:
    row = conn.execute(select(datasets).where(datasets.c.project_id == project_id, datasets.c.name == name)).first()
    return None if row is None else _dataset(row)


def latest_version(conn: Connection, dataset_id: str) -> VersionRow | None:
    row = conn.execute(
        select(dataset_versions)
        .where(dataset_versions.c.dataset_id == dataset_id)
        .order_by(dataset_versions.c.version.desc())
        .limit(1)
    ).first()
    return None if row is None else _version(row)


def get_version(conn: Connection, dataset_id: str, version: int) -> VersionRow | None:
    row = conn.execute(
        select(dataset_versions).where(
            dataset_versions.c.dataset_id == dataset_id, dataset_versions.c.version == version
        )
    ).first()
    return None if row is None else _version(row)


def list_versions(conn: Connection, dataset_id: str) -> list[VersionRow]:
    rows = conn.execute(
        select(dataset_versions)
        .where(dataset_versions.c.dataset_id == dataset_id)
        .order_by(dataset_versions.c.version.desc())
    ).all()
    return [_version(r) for r in rows]


def list_datasets(conn: Connection, project_id: str) -> list[tuple[DatasetRow, VersionRow]]:
    """Every dataset of the project with its latest version, by name."""
    latest = (
        select(dataset_versions.c.dataset_id, func.max(dataset_versions.c.version).label("version"))
        .group_by(dataset_versions.c.dataset_id)
        .subquery()
    )
    rows = conn.execute(
        select(datasets, dataset_versions)
        .join(latest, latest.c.dataset_id == datasets.c.id)
        .join(
            dataset_versions,
            (dataset_versions.c.dataset_id == datasets.c.id) & (dataset_versions.c.version == latest.c.version),
        )
        .where(datasets.c.project_id == project_id)
        .order_by(datasets.c.name)
    ).all()
    out = []
    for row in rows:
        m = row._mapping
        out.append(
            (
                DatasetRow(
                    m[datasets.c.id],
                    m[datasets.c.project_id],
                    m[datasets.c.name],
                    m[datasets.c.description],
                    m[datasets.c.created_at],
                    m[datasets.c.created_by],
                    m[datasets.c.updated_at],
                ),
                VersionRow(
                    m[dataset_versions.c.id],
                    m[dataset_versions.c.dataset_id],
                    int(m[dataset_versions.c.version]),
                    m[dataset_versions.c.content_hash],
                    int(m[dataset_versions.c.item_count]),
                    dict(m[dataset_versions.c.splits] or {}),
                    m[dataset_versions.c.message],
                    m[dataset_versions.c.author],
                    m[dataset_versions.c.created_at],
                ),
            )
        )
    return out


def _store_items(conn: Connection, dataset_id: str, items: Sequence[dict[str, Any]], hashes: list[str]) -> list[str]:
    """The item row id of each item, inserting the ones the dataset does not hold yet."""
    ids: dict[str, str] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), _CHUNK):
        part = unique[start : start + _CHUNK]
        for row in conn.execute(
            select(dataset_items.c.content_hash, dataset_items.c.id).where(
                dataset_items.c.dataset_id == dataset_id, dataset_items.c.content_hash.in_(part)
            )
        ):
            ids[row.content_hash] = row.id
    new_rows = []
    for item, digest in zip(items, hashes, strict=True):
        if digest not in ids:
            ids[digest] = new_id("dsi")
            new_rows.append({"id": ids[digest], "dataset_id": dataset_id, "content_hash": digest, "body": item})
    for start in range(0, len(new_rows), _CHUNK):
        conn.execute(insert(dataset_items), new_rows[start : start + _CHUNK])
    return [ids[d] for d in hashes]


def push_version(
    conn: Connection,
    *,
    project_id: str,
    name: str,
    items: Sequence[dict[str, Any]],
    actor: str | None,
    message: str | None = None,
    description: str | None = None,
) -> Pushed:
    """Store `items` (validated bodies, `datasets.items.validate_items`) as the dataset's next version, creating
    the dataset on its first push; no version when they equal the latest version's."""
    now = time.time()
    hashes = [content_hash(item) for item in items]
    digest = version_hash(hashes)
    dataset = get_dataset(conn, project_id, name)
    if dataset is None:
        dataset = DatasetRow(new_id("ds"), project_id, name, description, now, actor, now)
        conn.execute(
            insert(datasets).values(
                id=dataset.id,
                project_id=project_id,
                name=name,
                description=description,
                created_at=now,
                created_by=actor,
                updated_at=now,
            )
        )
        latest = None
    else:
        latest = latest_version(conn, dataset.id)
        if latest is not None and latest.content_hash == digest:
            return Pushed(dataset, latest, created=False)
    item_ids = _store_items(conn, dataset.id, items, hashes)
    splits = dict(Counter(str(item["split"]) for item in items if item.get("split")))
    version = VersionRow(
        new_id("dsv"),
        dataset.id,
        (latest.version if latest else 0) + 1,
        digest,
        len(items),
        splits,
        message,
        actor,
        now,
    )
    conn.execute(
        insert(dataset_versions).values(
            id=version.id,
            dataset_id=dataset.id,
            version=version.version,
            content_hash=digest,
            item_count=version.item_count,
            splits=splits,
            message=message,
            author=actor,
            created_at=now,
        )
    )
    links = [{"version_id": version.id, "position": n, "item_id": i} for n, i in enumerate(item_ids)]
    for start in range(0, len(links), _CHUNK):
        conn.execute(insert(dataset_version_items), links[start : start + _CHUNK])
    values: dict[str, Any] = {"updated_at": now}
    if description is not None:
        values["description"] = description
    conn.execute(update(datasets).where(datasets.c.id == dataset.id).values(**values))
    return Pushed(dataset, version, created=True)


def version_items(
    conn: Connection, version_id: str, *, split: str | None = None, offset: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """The items of a version in order (optionally one split's; `offset`/`limit` page through them)."""
    query = (
        select(dataset_items.c.body)
        .join(dataset_version_items, dataset_version_items.c.item_id == dataset_items.c.id)
        .where(dataset_version_items.c.version_id == version_id)
        .order_by(dataset_version_items.c.position)
    )
    if split is None:
        query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [dict(row.body) for row in conn.execute(query)]
    chosen = [dict(row.body) for row in conn.execute(query) if row.body.get("split") == split]
    return chosen[offset : None if limit is None else offset + limit]
