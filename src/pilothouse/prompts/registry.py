"""The prompt registry: pushes (idempotent, content-hashed, numbered versions), references, labels.

Every function takes a Connection inside the caller's transaction; changes append their audit event in the
same transaction. Rules:
- A push creates a version only when the content hash differs from the prompt's LATEST version; versions are
  numbered 1, 2, 3, ... per prompt and their content never changes. A push whose content equals the latest
  version's but whose file text differs (a comment, whitespace, key order) updates the file text kept with
  that version (audited as `prompt.version.source_update`, with a diff of the text), so `pull` returns the
  latest pushed text byte for byte.
- The label `latest` always points at the newest version (moved by pushes only). The label `production` is
  set to a new version automatically only when the prompt has no `production` label yet (its first version);
  after that it moves only when someone moves it (a rollout or rollback, audited as `prompt.label.move`).
- A protected label can only be moved (or unprotected) with an admin key.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pilothouse.audit.chain import append_event
from pilothouse.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unprocessable
from pilothouse.prompts.canary import choose_version
from pilothouse.prompts.files import (
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
from pilothouse.prompts.refs import DEFAULT_LABEL, LATEST_LABEL, MAX_VERSION, PromptRef, check_label, check_name
from pilothouse.store import prompts as repo
from pilothouse.store.keys import role_at_least
from pilothouse.store.prompts import LabelRow, PromptRow, TestSuiteRow, VersionRow

ADMIN = "admin"
MAX_WEIGHT = 1_000_000
"""A split's largest weight (weights are relative; the bound keeps them finite)."""


@dataclass(frozen=True)
class PromptVersion:
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
    name: str
    splits: list[dict[str, Any]]
    protected: bool
    rollback_rule: dict[str, Any] | None
    updated_at: float
    updated_by: str | None


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


# -- label change listeners (the gateway's resolver cache) -------------------------------------------------------
LabelListener = Callable[[str, str], None]
_listeners: list[LabelListener] = []
_listeners_lock = threading.Lock()


def add_label_listener(listener: LabelListener) -> None:
    """Call `listener(project_id, prompt_name)` whenever this process changes a prompt's labels."""
    with _listeners_lock:
        _listeners.append(listener)


def remove_label_listener(listener: LabelListener) -> None:
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def notify_label_change(project_id: str, prompt_name: str) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(project_id, prompt_name)


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


def _require_label(conn: Connection, prompt: PromptRow, label: str) -> LabelRow:
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
    label = _require_label(conn, prompt, ref.label or DEFAULT_LABEL)
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
    label = _require_label(conn, prompt, ref.label)
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


# -- labels -----------------------------------------------------------------------------------------------------
def normalize_splits(splits: Any) -> list[dict[str, Any]]:
    """Check a label's splits: a non-empty list of {version: int >= 1, weight: number > 0}, distinct versions."""
    if not isinstance(splits, list) or not splits:
        raise InvalidRequest("'splits' must be a non-empty list of {version, weight}", param="splits")
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, split in enumerate(splits):
        where = f"splits[{i}]"
        if not isinstance(split, dict) or set(split) - {"version", "weight"}:
            raise InvalidRequest(f"'{where}' must be {{version, weight}}", param=where)
        version, weight = split.get("version"), split.get("weight", 100)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
            raise InvalidRequest(f"'{where}.version' must be a version number (1 to {MAX_VERSION})", param=where)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= MAX_WEIGHT:
            raise InvalidRequest(
                f"'{where}.weight' must be a number greater than 0 and at most {MAX_WEIGHT:,}, got {weight!r}",
                param=where,
            )
        if version in seen:
            raise InvalidRequest(f"version {version} appears twice in 'splits'", param=where)
        seen.add(version)
        out.append({"version": version, "weight": weight})
    return out


def _check_label_name(label: str) -> None:
    try:
        check_label(label)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="label") from None


def set_label(
    conn: Connection,
    *,
    project_id: str,
    prompt_name: str,
    label: str,
    splits: list[dict[str, Any]],
    actor: str,
    role: str,
    reason: str | None = None,
    action: str = "prompt.label.move",
    details: dict[str, Any] | None = None,
) -> Label:
    """Point `label` at `splits` (one version at weight 100, or a canary split), creating the label if needed.

    Refuses `latest` (moved by pushes), unknown versions (NotFound) and, unless `role` is admin, protected
    labels (Forbidden). Records `action` in the audit log with {from, to, reason} and any `details` (the
    canary monitor adds its decision's numbers)."""
    _check_label_name(label)
    if label == LATEST_LABEL:
        raise InvalidRequest("the label 'latest' always points at the newest version; pushes move it", param="label")
    clean = normalize_splits(splits)
    prompt = require_prompt(conn, project_id, prompt_name, for_update=True)
    missing = sorted(
        {s["version"] for s in clean} - repo.existing_versions(conn, prompt.id, [s["version"] for s in clean])
    )
    if missing:
        latest = repo.latest_version(conn, prompt.id)
        newest = f"its newest is {latest.version}" if latest else "it has none"
        raise NotFound(
            f"prompt '{prompt_name}' has no version {missing[0]} ({newest})",
            code="prompt_version_not_found",
            param="version",
        )
    current = repo.get_label(conn, prompt.id, label)
    if current is not None and current.protected and not role_at_least(role, ADMIN):
        raise protected_label_error(prompt_name, label, baseline_version(clean), role, "moving it")
    row = repo.put_label(conn, prompt_id=prompt.id, name=label, splits=clean, updated_by=actor)
    append_event(
        conn,
        actor=actor,
        action=action,
        target=f"prompt:{prompt_name}@{label}",
        project_id=project_id,
        details={
            "prompt": prompt_name,
            "label": label,
            "from": None if current is None else current.splits,
            "to": clean,
            "reason": reason,
            **(details or {}),
        },
    )
    notify_label_change(project_id, prompt_name)
    return to_label(row)


def protected_label_error(prompt_name: str, label: str, version: int, role: str, doing: str) -> Forbidden:
    """The 403 for a non-admin key on a protected label. Both `prompt label` and `prompt promote` are refused
    there, so the hint names what does work: an admin running the gated promotion, or an unprotected label."""
    other = "another unprotected label" if label == "staging" else "an unprotected label such as 'staging'"
    return Forbidden(
        f"the label '{label}' of prompt '{prompt_name}' is protected: {doing} needs an admin key (this key's role "
        f"is '{role}'). Ask an admin to run `pilothouse prompt promote {prompt_name} {version} --to {label}` "
        f"(gated by the scenario tests) or to unprotect the label; with this key you can point {other} at it "
        f"(`pilothouse prompt label {prompt_name} {version} {'canary' if label == 'staging' else 'staging'}`)",
        code="label_protected",
    )


def protect_label(
    conn: Connection, *, project_id: str, prompt_name: str, label: str, protected: bool, actor: str, role: str
) -> Label:
    """Protect a label (only admins may move it from then on) or lift the protection; admin only."""
    _check_label_name(label)
    if not role_at_least(role, ADMIN):
        raise Forbidden(
            f"protecting or unprotecting a label needs an admin key (this key's role is '{role}')",
            code="admin_required",
        )
    if label == LATEST_LABEL:
        raise InvalidRequest("the label 'latest' is moved by every push and cannot be protected", param="label")
    prompt = require_prompt(conn, project_id, prompt_name)
    row = _require_label(conn, prompt, label)
    repo.update_label(conn, row.id, protected=protected, updated_by=actor)
    append_event(
        conn,
        actor=actor,
        action="prompt.label.protect" if protected else "prompt.label.unprotect",
        target=f"prompt:{prompt_name}@{label}",
        project_id=project_id,
        details={"prompt": prompt_name, "label": label, "was_protected": row.protected},
    )
    updated = repo.get_label(conn, prompt.id, label)
    assert updated is not None
    return to_label(updated)


def set_rollback_rule(
    conn: Connection, *, project_id: str, prompt_name: str, label: str, rule: dict[str, Any] | None, actor: str
) -> Label:
    """Attach (or with None, remove) the rollback rule the canary monitor applies to this label."""
    if rule is not None:
        metric = rule.get("metric") if isinstance(rule, dict) else None
        if not isinstance(metric, str) or not metric:
            raise InvalidRequest("a rollback rule needs a 'metric' such as 'score:helpful' or 'error_rate'")
        samples = rule.get("min_samples", 1)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise InvalidRequest("'min_samples' must be a positive integer", param="min_samples")
        alpha = rule.get("alpha", 0.05)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise InvalidRequest("'alpha' must be a number between 0 and 1", param="alpha")
    prompt = require_prompt(conn, project_id, prompt_name)
    row = _require_label(conn, prompt, label)
    repo.update_label(conn, row.id, rollback_rule=rule, updated_by=actor)
    append_event(
        conn,
        actor=actor,
        action="prompt.label.rollback_rule",
        target=f"prompt:{prompt_name}@{label}",
        project_id=project_id,
        details={"prompt": prompt_name, "label": label, "from": row.rollback_rule, "to": rule},
    )
    updated = repo.get_label(conn, prompt.id, label)
    assert updated is not None
    return to_label(updated)


# -- pushes -----------------------------------------------------------------------------------------------------
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
    Unprocessable (`prompt_too_large`) if its template or file text is over MAX_PROMPT_SIZE."""
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
                definitions.append(parse_prompt_file(path, text))
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
