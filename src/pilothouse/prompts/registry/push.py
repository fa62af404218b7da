"""Pushing prompt files: idempotent, content-hashed, numbered versions, and each prompt's test file.

Every function takes a Connection inside the caller's transaction; each change appends its audit event there.
- A push creates a version only when the content hash differs from the prompt's LATEST version; versions are
  numbered 1, 2, 3, ... per prompt and their content never changes. A push whose content equals the latest
  version's but whose file text differs (a comment, whitespace, key order) updates the file text kept with
  that version (audited as `prompt.version.source_update`, with a diff of the text), so `pull` returns the
  latest pushed text byte for byte.
- A new version moves the label `latest`. The label `production` is set to a new version automatically only
  when the prompt has no `production` label yet (its first version); after that it moves only when someone
  moves it (a rollout or rollback, audited as `prompt.label.move`).
- A batch of files is all or nothing: one invalid file and nothing is pushed.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pilothouse.audit.chain import append_event
from pilothouse.errors import InvalidRequest, Unprocessable
from pilothouse.prompts.registry.files import (
    MAX_PROMPT_SIZE,
    PromptDefinition,
    PromptFileError,
    PromptTooLarge,
    TestSuiteFile,
    canonical_json,
    file_format,
    is_test_file,
    parse_prompt_file,
    parse_test_file,
)
from pilothouse.prompts.registry.labels import notify_label_change
from pilothouse.prompts.registry.lookup import PromptVersion, require_prompt, to_version
from pilothouse.prompts.registry.refs import DEFAULT_LABEL, LATEST_LABEL, check_name
from pilothouse.rag.chat_options import prompt_option_error
from pilothouse.store import prompts as repo
from pilothouse.store.prompts import VersionRow


@dataclass(frozen=True)
class PushResult:
    """What one pushed prompt file did: a new version (`created`), the same version with its file text
    replaced (`source_updated`: only comments or formatting changed), or nothing (`unchanged`)."""

    name: str
    version: PromptVersion
    created: bool
    labels_moved: list[str]
    path: str | None = None
    source_updated: bool = False

    @property
    def status(self) -> str:
        if self.created:
            return "created"
        return "source_updated" if self.source_updated else "unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "prompt",
            "path": self.path,
            "name": self.name,
            "status": self.status,
            "version": self.version.version,
            "content_hash": self.version.content_hash,
            "labels_moved": self.labels_moved,
        }


def push_definition(
    conn: Connection,
    *,
    project_id: str,
    definition: PromptDefinition,
    actor: str,
    author: str | None = None,
    message: str | None = None,
) -> PushResult:
    """Create a version of `definition.name` unless its content hash equals the latest version's.
    Unprocessable (`prompt_too_large`) if its template or file text is over MAX_PROMPT_SIZE; InvalidRequest
    (`invalid_prompt`) for a `rag` configuration a chat request could not carry."""
    try:
        check_rag(definition)
    except PromptFileError as exc:
        raise InvalidRequest(exc.message, param="rag", code="invalid_prompt") from None
    sizes = (len(canonical_json(definition.template)), len(definition.source_text or ""))
    if max(sizes) > MAX_PROMPT_SIZE:
        raise Unprocessable(
            f"prompt '{definition.name}' is {max(sizes):,} characters long; prompts may be at most "
            f"{MAX_PROMPT_SIZE:,} (pass long text in a variable instead)",
            code="prompt_too_large",
        )
    prompt = repo.get_prompt(conn, project_id, definition.name, for_update=True)
    if prompt is None:
        prompt = repo.create_prompt(conn, project_id, definition.name, actor)
    latest = repo.latest_version(conn, prompt.id)
    if latest is not None and latest.content_hash == definition.content_hash:
        changed = definition.source_text is not None and (
            definition.source_text != latest.source_text or definition.source_format != latest.source_format
        )
        if changed:
            _update_source(conn, project_id, prompt.name, latest, definition, actor, message or definition.message)
        return PushResult(prompt.name, to_version(latest, prompt.name), False, [], definition.path, changed)
    number = 1 if latest is None else latest.version + 1
    row = repo.insert_version(
        conn,
        prompt_id=prompt.id,
        version=number,
        content_hash=definition.content_hash,
        template=definition.template,
        source_text=definition.source_text,
        source_format=definition.source_format,
        message=message or definition.message,
        author=author or actor,
    )
    split = [{"version": number, "weight": 100}]
    moved = [LATEST_LABEL]
    repo.put_label(conn, prompt_id=prompt.id, name=LATEST_LABEL, splits=split, updated_by=actor)
    append_event(
        conn,
        actor=actor,
        action="prompt.version.create",
        target=f"prompt:{prompt.name}@{number}",
        project_id=project_id,
        details={"prompt": prompt.name, "version": number, "content_hash": row.content_hash, "message": row.message},
    )
    if repo.get_label(conn, prompt.id, DEFAULT_LABEL) is None:
        repo.put_label(conn, prompt_id=prompt.id, name=DEFAULT_LABEL, splits=split, updated_by=actor)
        moved.append(DEFAULT_LABEL)
        append_event(
            conn,
            actor=actor,
            action="prompt.label.move",
            target=f"prompt:{prompt.name}@{DEFAULT_LABEL}",
            project_id=project_id,
            details={
                "prompt": prompt.name,
                "label": DEFAULT_LABEL,
                "from": None,
                "to": split,
                "reason": "first version of the prompt",
            },
        )
    notify_label_change(project_id, prompt.name)
    return PushResult(prompt.name, to_version(row, prompt.name), True, moved, definition.path)


def check_rag(definition: PromptDefinition) -> PromptDefinition:
    """`definition`, if its configuration's `rag` passes a chat request's checks (rag/chat_options.py; the
    server's side of a push, as the SDK reads prompt files without the retrieval code); else PromptFileError."""
    rag = (definition.template.get("config") or {}).get("rag")
    problem = None if rag is None else prompt_option_error(rag)
    if problem is not None:
        raise PromptFileError(definition.path or definition.name, problem)
    return definition


MAX_SOURCE_DIFF = 64 * 1024
"""The longest text diff an audit event of a source update keeps (longer ones are cut, and say so)."""


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _update_source(
    conn: Connection,
    project_id: str,
    name: str,
    latest: VersionRow,
    definition: PromptDefinition,
    actor: str,
    message: str | None,
) -> None:
    """Keep `definition`'s file text with the latest version (same content hash) and audit the change with a
    unified diff of the text, so the text it replaces can be recovered from the audit log."""
    assert definition.source_text is not None
    repo.update_version_source(conn, latest.id, definition.source_text, definition.source_format)
    before = latest.source_text if latest.source_text is not None else ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        definition.source_text.splitlines(keepends=True),
        f"{name}@{latest.version} (before)",
        f"{name}@{latest.version}",
    )
    diff = "".join(lines)
    append_event(
        conn,
        actor=actor,
        action="prompt.version.source_update",
        target=f"prompt:{name}@{latest.version}",
        project_id=project_id,
        details={
            "prompt": name,
            "version": latest.version,
            "content_hash": latest.content_hash,
            "from": {"format": latest.source_format, "sha256": _sha256(latest.source_text)},
            "to": {"format": definition.source_format, "sha256": _sha256(definition.source_text)},
            "diff": diff[:MAX_SOURCE_DIFF],
            "diff_truncated": len(diff) > MAX_SOURCE_DIFF,
            "message": message,
        },
    )


def push_test_suite(conn: Connection, *, project_id: str, prompt_name: str, suite: TestSuiteFile, actor: str) -> str:
    """Store a prompt's test file; returns created, updated or unchanged."""
    prompt = require_prompt(conn, project_id, prompt_name)
    current = repo.get_test_suite(conn, prompt.id)
    if current is not None and current.source_text == suite.source_text and current.cases == suite.cases:
        return "unchanged"
    repo.put_test_suite(conn, prompt.id, suite.cases, suite.source_text)
    append_event(
        conn,
        actor=actor,
        action="prompt.tests.update",
        target=f"prompt:{prompt_name}",
        project_id=project_id,
        details={"prompt": prompt_name, "cases": len(suite.cases)},
    )
    return "created" if current is None else "updated"


def parse_batch(files: list[tuple[str, str]]) -> tuple[list[PromptDefinition], list[TestSuiteFile]]:
    """Parse a batch of (path, text) prompt and test files; one InvalidRequest lists every invalid file."""
    definitions: list[PromptDefinition] = []
    suites: list[TestSuiteFile] = []
    problems: list[str] = []
    too_large = False
    for path, text in files:
        try:
            if is_test_file(path):
                suites.append(parse_test_file(path, text))
            elif file_format(path) is not None:
                definitions.append(check_rag(parse_prompt_file(path, text)))
            else:
                problems.append(f"{path}: not a prompt file (use .yaml, .yml or .md; tests: NAME.tests.yaml)")
        except PromptFileError as exc:
            problems.append(exc.message)
            too_large = too_large or isinstance(exc, PromptTooLarge)
    seen: dict[str, str] = {}
    for d in definitions:
        if d.name in seen:
            problems.append(f"{d.path}: prompt '{d.name}' is also defined in {seen[d.name]}")
        seen[d.name] = d.path or d.name
    if problems:
        count = f"{len(problems)} files are" if len(problems) > 1 else "a file is"
        message = f"{count} invalid, nothing was pushed: " + "; ".join(problems)
        if too_large:  # 422 like the API's own bound on a file's length
            raise Unprocessable(message, code="prompt_too_large")
        raise InvalidRequest(message, code="invalid_prompt")
    return definitions, suites


def _stem(path: str | None) -> str:
    name = (path or "").replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0]


def push_files(
    conn: Connection,
    *,
    project_id: str,
    files: list[tuple[str, str]],
    actor: str,
    author: str | None = None,
    message: str | None = None,
) -> list[dict[str, Any]]:
    """Push a folder's files (all or nothing): a version per changed prompt, test files stored beside them.

    A test file `X.tests.yaml` belongs to the prompt in file `X.*` of the batch, else to the prompt named X."""
    definitions, suites = parse_batch(files)
    by_stem = {_stem(d.path): d.name for d in definitions}
    by_name = {d.name for d in definitions}
    targets: list[tuple[TestSuiteFile, str]] = []
    for suite in suites:
        name = by_stem.get(suite.stem) or (suite.stem if suite.stem in by_name else None)
        if name is None:
            try:
                check_name(suite.stem)
            except ValueError:
                pass
            else:
                if repo.get_prompt(conn, project_id, suite.stem) is not None:
                    name = suite.stem
        if name is None:
            raise InvalidRequest(
                f"{suite.path}: no prompt file {suite.stem}.yaml (or .yml/.md) beside it and no prompt "
                f"named '{suite.stem}'; nothing was pushed",
                code="invalid_prompt",
            )
        targets.append((suite, name))
    results: list[dict[str, Any]] = []
    for d in definitions:
        pushed = push_definition(conn, project_id=project_id, definition=d, actor=actor, author=author, message=message)
        results.append(pushed.to_dict())
    for suite, name in targets:
        status = push_test_suite(conn, project_id=project_id, prompt_name=name, suite=suite, actor=actor)
        results.append({"kind": "tests", "path": suite.path, "name": name, "status": status, "cases": len(suite.cases)})
    return results
