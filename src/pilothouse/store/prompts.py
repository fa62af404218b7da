"""Prompts, their immutable versions, labels (with canary splits and rollback rules) and test suites.

Plain reads and writes on a Connection; the rules (numbering, idempotent pushes, protected labels, audit)
live in `pilothouse.prompts.registry`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from pilothouse.store.ids import new_id
from pilothouse.store.tables import prompt_labels, prompt_test_suites, prompt_versions, prompts


@dataclass(frozen=True, slots=True)
class PromptRow:
    id: str
    project_id: str
    name: str
    created_at: float
    created_by: str | None


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: str
    prompt_id: str
    version: int
    content_hash: str
    template: dict[str, Any]
    source_text: str | None
    source_format: str | None
    message: str | None
    author: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class LabelRow:
    id: str
    prompt_id: str
    name: str
    splits: list[dict[str, Any]]
    protected: bool
    rollback_rule: dict[str, Any] | None
    updated_at: float
    updated_by: str | None


@dataclass(frozen=True, slots=True)
class TestSuiteRow:
    prompt_id: str
    cases: list[dict[str, Any]]
    source_text: str | None
    updated_at: float


def _prompt(row: Any) -> PromptRow:
    return PromptRow(row.id, row.project_id, row.name, row.created_at, row.created_by)


def _version(row: Any) -> VersionRow:
    return VersionRow(
        id=row.id,
        prompt_id=row.prompt_id,
        version=int(row.version),
        content_hash=row.content_hash,
        template=row.template,
        source_text=row.source_text,
        source_format=row.source_format,
        message=row.message,
        author=row.author,
        created_at=row.created_at,
    )


def _label(row: Any) -> LabelRow:
    return LabelRow(
        id=row.id,
        prompt_id=row.prompt_id,
        name=row.name,
        splits=list(row.splits or []),
        protected=bool(row.protected),
        rollback_rule=row.rollback_rule,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


# -- prompts ----------------------------------------------------------------------------------------------------
def get_prompt(conn: Connection, project_id: str, name: str, *, for_update: bool = False) -> PromptRow | None:
    """The prompt `name` of a project; `for_update` locks its row (PostgreSQL) so pushes to it serialise."""
    query = select(prompts).where(prompts.c.project_id == project_id, prompts.c.name == name)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _prompt(row)


def create_prompt(conn: Connection, project_id: str, name: str, created_by: str | None) -> PromptRow:
    row = PromptRow(new_id("prm"), project_id, name, time.time(), created_by)
    conn.execute(
        insert(prompts).values(
            id=row.id, project_id=project_id, name=name, created_at=row.created_at, created_by=created_by
        )
    )
    return row


def list_prompts(conn: Connection, project_id: str) -> list[PromptRow]:
    query = select(prompts).where(prompts.c.project_id == project_id).order_by(prompts.c.name)
    return [_prompt(r) for r in conn.execute(query)]


# -- versions ---------------------------------------------------------------------------------------------------
def latest_version(conn: Connection, prompt_id: str) -> VersionRow | None:
    query = (
        select(prompt_versions)
        .where(prompt_versions.c.prompt_id == prompt_id)
        .order_by(prompt_versions.c.version.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else _version(row)


def latest_versions(conn: Connection, prompt_ids: list[str]) -> dict[str, VersionRow]:
    """The newest version of each of these prompts (one query)."""
    if not prompt_ids:
        return {}
    newest = (
        select(prompt_versions.c.prompt_id, func.max(prompt_versions.c.version).label("version"))
        .where(prompt_versions.c.prompt_id.in_(prompt_ids))
        .group_by(prompt_versions.c.prompt_id)
        .subquery()
    )
    query = select(prompt_versions).join(
        newest,
        (prompt_versions.c.prompt_id == newest.c.prompt_id) & (prompt_versions.c.version == newest.c.version),
    )
    return {r.prompt_id: _version(r) for r in conn.execute(query)}


def get_version(conn: Connection, prompt_id: str, version: int) -> VersionRow | None:
    query = select(prompt_versions).where(
        prompt_versions.c.prompt_id == prompt_id, prompt_versions.c.version == version
    )
    row = conn.execute(query).first()
    return None if row is None else _version(row)


def find_versions_by_hash(conn: Connection, prompt_id: str, prefix: str) -> list[VersionRow]:
    """Versions whose content hash starts with `prefix` (lowercase hex), newest first."""
    query = (
        select(prompt_versions)
        .where(prompt_versions.c.prompt_id == prompt_id, prompt_versions.c.content_hash.startswith(prefix))
        .order_by(prompt_versions.c.version.desc())
    )
    return [_version(r) for r in conn.execute(query)]


def list_versions(conn: Connection, prompt_id: str) -> list[VersionRow]:
    query = select(prompt_versions).where(prompt_versions.c.prompt_id == prompt_id).order_by(prompt_versions.c.version)
    return [_version(r) for r in conn.execute(query)]


def existing_versions(conn: Connection, prompt_id: str, versions: list[int]) -> set[int]:
    query = select(prompt_versions.c.version).where(
        prompt_versions.c.prompt_id == prompt_id, prompt_versions.c.version.in_(versions)
    )
    return {int(v) for v in conn.execute(query).scalars()}


def insert_version(
    conn: Connection,
    *,
    prompt_id: str,
    version: int,
    content_hash: str,
    template: dict[str, Any],
    source_text: str | None,
    source_format: str | None,
    message: str | None,
    author: str | None,
) -> VersionRow:
    row = VersionRow(
        id=new_id("prv"),
        prompt_id=prompt_id,
        version=version,
        content_hash=content_hash,
        template=template,
        source_text=source_text,
        source_format=source_format,
        message=message,
        author=author,
        created_at=time.time(),
    )
    conn.execute(
        insert(prompt_versions).values(
            id=row.id,
            prompt_id=prompt_id,
            version=version,
            content_hash=content_hash,
            template=template,
            source_text=source_text,
            source_format=source_format,
            message=message,
            author=author,
            created_at=row.created_at,
        )
    )
    return row


def update_version_source(conn: Connection, version_id: str, source_text: str, source_format: str | None) -> None:
    """Replace the file text kept with a version (its content, and so its hash, stay as they are)."""
    conn.execute(
        update(prompt_versions)
        .where(prompt_versions.c.id == version_id)
        .values(source_text=source_text, source_format=source_format)
    )


# -- labels -----------------------------------------------------------------------------------------------------
def get_label(conn: Connection, prompt_id: str, name: str) -> LabelRow | None:
    query = select(prompt_labels).where(prompt_labels.c.prompt_id == prompt_id, prompt_labels.c.name == name)
    row = conn.execute(query).first()
    return None if row is None else _label(row)


def list_labels(conn: Connection, prompt_id: str) -> list[LabelRow]:
    query = select(prompt_labels).where(prompt_labels.c.prompt_id == prompt_id).order_by(prompt_labels.c.name)
    return [_label(r) for r in conn.execute(query)]


def labels_of(conn: Connection, prompt_ids: list[str]) -> dict[str, list[LabelRow]]:
    """The labels of each of these prompts (one query)."""
    out: dict[str, list[LabelRow]] = {pid: [] for pid in prompt_ids}
    if not prompt_ids:
        return out
    query = select(prompt_labels).where(prompt_labels.c.prompt_id.in_(prompt_ids)).order_by(prompt_labels.c.name)
    for row in conn.execute(query):
        out[row.prompt_id].append(_label(row))
    return out


def put_label(
    conn: Connection, *, prompt_id: str, name: str, splits: list[dict[str, Any]], updated_by: str | None
) -> LabelRow:
    """Point a label at `splits`, creating it (unprotected) if it does not exist; returns the new row."""
    now = time.time()
    existing = get_label(conn, prompt_id, name)
    if existing is None:
        conn.execute(
            insert(prompt_labels).values(
                id=new_id("prl"),
                prompt_id=prompt_id,
                name=name,
                splits=splits,
                protected=False,
                rollback_rule=None,
                updated_at=now,
                updated_by=updated_by,
            )
        )
    else:
        conn.execute(
            update(prompt_labels)
            .where(prompt_labels.c.id == existing.id)
            .values(splits=splits, updated_at=now, updated_by=updated_by)
        )
    label = get_label(conn, prompt_id, name)
    assert label is not None
    return label


def update_label(conn: Connection, label_id: str, **values: Any) -> None:
    """Change a label's `protected` or `rollback_rule` (and its update time/author)."""
    conn.execute(update(prompt_labels).where(prompt_labels.c.id == label_id).values(updated_at=time.time(), **values))


# -- test suites ------------------------------------------------------------------------------------------------
def get_test_suite(conn: Connection, prompt_id: str) -> TestSuiteRow | None:
    row = conn.execute(select(prompt_test_suites).where(prompt_test_suites.c.prompt_id == prompt_id)).first()
    if row is None:
        return None
    return TestSuiteRow(row.prompt_id, list(row.cases or []), row.source_text, row.updated_at)


def put_test_suite(conn: Connection, prompt_id: str, cases: list[dict[str, Any]], source_text: str | None) -> None:
    now = time.time()
    if get_test_suite(conn, prompt_id) is None:
        conn.execute(
            insert(prompt_test_suites).values(prompt_id=prompt_id, cases=cases, source_text=source_text, updated_at=now)
        )
    else:
        conn.execute(
            update(prompt_test_suites)
            .where(prompt_test_suites.c.prompt_id == prompt_id)
            .values(cases=cases, source_text=source_text, updated_at=now)
        )
