"""Finding prompt versions and labels: by number, label or content-hash prefix, and the version one call gets.

Every function takes a Connection inside the caller's transaction. A missing prompt, version or label is
NotFound with the code the API answers (`prompt_not_found`, `prompt_version_not_found`,
`prompt_label_not_found`); a content-hash prefix that matches two contents is a Conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pilothouse.errors import Conflict, NotFound
from pilothouse.prompts.registry.refs import DEFAULT_LABEL, PromptRef
from pilothouse.prompts.registry.splits import choose_version
from pilothouse.store import prompts as repo
from pilothouse.store.prompts import LabelRow, PromptRow, TestSuiteRow, VersionRow


@dataclass(frozen=True)
class PromptVersion:
    """One stored version of a prompt; its content never changes."""

    prompt_id: str
    name: str
    version: int
    content_hash: str
    template: dict[str, Any]
    message: str | None
    author: str | None
    created_at: float


@dataclass(frozen=True)
class Label:
    """A label: the versions it splits traffic between ([{version, weight}]), its protection and its canary's
    rollback rule."""

    name: str
    splits: list[dict[str, Any]]
    protected: bool
    rollback_rule: dict[str, Any] | None
    updated_at: float
    updated_by: str | None


# -- conversions ------------------------------------------------------------------------------------------------
def to_version(row: VersionRow, name: str) -> PromptVersion:
    return PromptVersion(
        prompt_id=row.prompt_id,
        name=name,
        version=row.version,
        content_hash=row.content_hash,
        template=row.template,
        message=row.message,
        author=row.author,
        created_at=row.created_at,
    )


def to_label(row: LabelRow) -> Label:
    return Label(row.name, row.splits, row.protected, row.rollback_rule, row.updated_at, row.updated_by)


def label_dict(label: Label) -> dict[str, Any]:
    return {
        "name": label.name,
        "splits": label.splits,
        "version": baseline_version(label.splits),
        "protected": label.protected,
        "rollback_rule": label.rollback_rule,
        "updated_at": label.updated_at,
        "updated_by": label.updated_by,
    }


def baseline_version(splits: list[dict[str, Any]]) -> int:
    """The version a label stands for: the split with the largest weight (a tie: the lowest version)."""
    best = min(splits, key=lambda s: (-float(s["weight"]), int(s["version"])))
    return int(best["version"])


# -- lookups ----------------------------------------------------------------------------------------------------
def require_prompt(conn: Connection, project_id: str, name: str, *, for_update: bool = False) -> PromptRow:
    prompt = repo.get_prompt(conn, project_id, name, for_update=for_update)
    if prompt is None:
        raise NotFound(
            f"no prompt named '{name}' in this project (push it with `pilothouse prompt push DIR`)",
            code="prompt_not_found",
        )
    return prompt


def require_label(conn: Connection, prompt: PromptRow, label: str) -> LabelRow:
    row = repo.get_label(conn, prompt.id, label)
    if row is None:
        names = ", ".join(lbl.name for lbl in repo.list_labels(conn, prompt.id)) or "none"
        raise NotFound(
            f"prompt '{prompt.name}' has no label '{label}' (its labels: {names})", code="prompt_label_not_found"
        )
    return row


def _version_row(conn: Connection, prompt: PromptRow, version: int) -> VersionRow:
    row = repo.get_version(conn, prompt.id, version)
    if row is None:
        latest = repo.latest_version(conn, prompt.id)
        newest = f"its newest is {latest.version}" if latest else "it has none"
        raise NotFound(f"prompt '{prompt.name}' has no version {version} ({newest})", code="prompt_version_not_found")
    return row


def _sha_row(conn: Connection, prompt: PromptRow, sha: str) -> VersionRow:
    rows = repo.find_versions_by_hash(conn, prompt.id, sha)
    if not rows:
        raise NotFound(
            f"prompt '{prompt.name}' has no version whose content hash starts with {sha}",
            code="prompt_version_not_found",
        )
    hashes = {r.content_hash for r in rows}
    if len(hashes) > 1:
        options = ", ".join(f"v{r.version} (sha:{r.content_hash[:12]})" for r in rows)
        raise Conflict(
            f"sha:{sha} is ambiguous for prompt '{prompt.name}': it matches {options}; give more digits",
            code="ambiguous_prompt_ref",
        )
    return rows[0]  # the same content pushed again later: the newest version holding it


def get_version_row(conn: Connection, project_id: str, ref: PromptRef) -> tuple[PromptRow, VersionRow]:
    """The prompt and the stored version a reference names (a label: its baseline version)."""
    prompt = require_prompt(conn, project_id, ref.name)
    if ref.version is not None:
        return prompt, _version_row(conn, prompt, ref.version)
    if ref.sha is not None:
        return prompt, _sha_row(conn, prompt, ref.sha)
    label = require_label(conn, prompt, ref.label or DEFAULT_LABEL)
    return prompt, _version_row(conn, prompt, baseline_version(label.splits))


def get_version(conn: Connection, project_id: str, ref: PromptRef) -> PromptVersion:
    """The version a reference names; for a label with several splits, its baseline. NotFound if missing."""
    prompt, row = get_version_row(conn, project_id, ref)
    return to_version(row, prompt.name)


def resolve_for_call(conn: Connection, project_id: str, ref: PromptRef, sticky_key: str) -> PromptVersion:
    """The version one call uses: a label's canary splits are applied (sticky per `sticky_key`)."""
    if ref.label is None and ref.version is None and ref.sha is None:
        ref = PromptRef(ref.name, label=DEFAULT_LABEL)
    if ref.label is None:
        return get_version(conn, project_id, ref)
    prompt = require_prompt(conn, project_id, ref.name)
    label = require_label(conn, prompt, ref.label)
    return to_version(_version_row(conn, prompt, choose_version(label.splits, sticky_key)), prompt.name)


def list_versions(conn: Connection, project_id: str, prompt_name: str) -> list[PromptVersion]:
    prompt = require_prompt(conn, project_id, prompt_name)
    return [to_version(r, prompt.name) for r in repo.list_versions(conn, prompt.id)]


def get_label(conn: Connection, project_id: str, prompt_name: str, label: str) -> Label | None:
    prompt = require_prompt(conn, project_id, prompt_name)
    row = repo.get_label(conn, prompt.id, label)
    return None if row is None else to_label(row)


def list_labels(conn: Connection, project_id: str, prompt_name: str) -> list[Label]:
    prompt = require_prompt(conn, project_id, prompt_name)
    return [to_label(r) for r in repo.list_labels(conn, prompt.id)]


def get_test_suite(conn: Connection, project_id: str, prompt_name: str) -> list[dict[str, Any]] | None:
    """The prompt's scenario test cases as pushed (None when it has no test file)."""
    row = get_test_suite_row(conn, project_id, prompt_name)
    return None if row is None else row.cases


def get_test_suite_row(conn: Connection, project_id: str, prompt_name: str) -> TestSuiteRow | None:
    prompt = require_prompt(conn, project_id, prompt_name)
    return repo.get_test_suite(conn, prompt.id)
