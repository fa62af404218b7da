"""Moving, protecting and watching labels: each change audited in the caller's transaction.

- The label `latest` always points at the newest version and is moved by pushes only (`push.py`).
- A label points at one version, or splits traffic between versions (a canary) with weights.
- A protected label can only be moved (or unprotected) with an admin key.
- Listeners (the gateway's resolver cache) hear of every label this process changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from pilothouse.audit.chain import append_event
from pilothouse.errors import Forbidden, InvalidRequest, NotFound
from pilothouse.prompts.registry.lookup import Label, baseline_version, require_label, require_prompt, to_label
from pilothouse.prompts.registry.refs import LATEST_LABEL, MAX_VERSION, check_label
from pilothouse.store import prompts as repo
from pilothouse.store.keys import role_at_least

ADMIN = "admin"
MAX_WEIGHT = 1_000_000
"""A split's largest weight (weights are relative; the bound keeps them finite)."""


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


# -- moves ------------------------------------------------------------------------------------------------------
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
    row = require_label(conn, prompt, label)
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
    row = require_label(conn, prompt, label)
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
