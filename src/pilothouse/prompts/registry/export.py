"""Prompts as files, for `pilothouse prompt pull` (POST /api/prompts/pull): read-only.

Each prompt is exported at one version: the one its label names (the label's baseline when it splits traffic),
its newest version (`latest`), or the version a NAME@REF of the `names` filter gives. The file is the text
the version was pushed as, or canonical YAML for a version pushed as JSON; the prompt's test file comes with it.
A prompt without that label is skipped (and named in `skipped`); an unknown name in the filter is a 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import Connection

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.prompts.registry.files import file_name, test_file_name, to_yaml
from pilothouse.prompts.registry.lookup import baseline_version, get_version_row
from pilothouse.prompts.registry.refs import PromptRef, parse_ref
from pilothouse.store import prompts as repo
from pilothouse.store.prompts import LabelRow, PromptRow, VersionRow


@dataclass(frozen=True, slots=True)
class Export:
    """The exported files (a prompt file, then its test file if it has one) and the prompts left out."""

    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "skipped": self.skipped}


def parse_names(names: Sequence[str] | None) -> dict[str, PromptRef | None] | None:
    """{name: the reference given with it, or None} for a `names` filter; None when there is no filter.
    InvalidRequest (param `names`) for an item that is not NAME or NAME@REF."""
    if names is None:
        return None
    wanted: dict[str, PromptRef | None] = {}
    for i, item in enumerate(names):
        try:
            ref = parse_ref(item)
        except ValueError as exc:
            raise InvalidRequest(f"names[{i}]: {exc}", param="names") from None
        wanted[ref.name] = ref if "@" in item else None
    return wanted


def export_prompts(
    conn: Connection,
    project_id: str,
    *,
    label: str | None = "production",
    latest: bool = False,
    names: Sequence[str] | None = None,
) -> Export:
    """Every prompt of the project (or those in `names`) as files: see the module."""
    if not latest and not label:
        raise InvalidRequest("give a 'label' or set 'latest'", param="label")
    wanted = parse_names(names)
    prompts = repo.list_prompts(conn, project_id)
    if wanted is not None:
        missing = sorted(set(wanted) - {p.name for p in prompts})
        if missing:
            raise NotFound(f"no prompt named {', '.join(map(repr, missing))} in this project", code="prompt_not_found")
        prompts = [p for p in prompts if p.name in wanted]
    labels = repo.labels_of(conn, [p.id for p in prompts])
    export = Export()
    for prompt in prompts:
        ref = None if wanted is None else wanted[prompt.name]
        row = _exported_version(conn, project_id, prompt, ref, labels[prompt.id], label=label, latest=latest)
        if row is None:
            export.skipped.append(prompt.name)
            continue
        export.files.append(_prompt_file(prompt.name, row))
        tests = _test_file(conn, prompt)
        if tests is not None:
            export.files.append(tests)
    return export


def _exported_version(
    conn: Connection,
    project_id: str,
    prompt: PromptRow,
    ref: PromptRef | None,
    labels: list[LabelRow],
    *,
    label: str | None,
    latest: bool,
) -> VersionRow | None:
    """The version to export: the filter's reference, the newest, or the label's baseline (None: no label)."""
    if ref is not None:
        return get_version_row(conn, project_id, ref)[1]
    if latest:
        return repo.latest_version(conn, prompt.id)
    found = next((lbl for lbl in labels if lbl.name == label), None)
    baseline = None if found is None else baseline_version(found.splits)
    return None if baseline is None else repo.get_version(conn, prompt.id, baseline)


def _prompt_file(name: str, row: VersionRow) -> dict[str, Any]:
    has_text = row.source_text is not None
    return {
        "kind": "prompt",
        "name": name,
        "version": row.version,
        "path": file_name(name, row.source_format if has_text else "yaml"),
        "content": row.source_text if has_text else to_yaml(name, row.template),
    }


def _test_file(conn: Connection, prompt: PromptRow) -> dict[str, Any] | None:
    suite = repo.get_test_suite(conn, prompt.id)
    if suite is None:
        return None
    text = suite.source_text
    if text is None:
        text = yaml.safe_dump(suite.cases, sort_keys=False, allow_unicode=True)
    return {"kind": "tests", "name": prompt.name, "path": test_file_name(prompt.name), "content": text}
