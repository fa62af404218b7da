"""/api/prompts: push and pull prompt files, versions, references, diffs, labels, render previews.

Roles: viewers read; developers push and move unprotected labels; admins protect labels and move protected
ones. Pushes are all-or-nothing per batch, and idempotent (unchanged content makes no version).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from pilothouse.errors import Conflict, InvalidRequest, Unprocessable
from pilothouse.principal import Principal
from pilothouse.prompts.registry.diff import diff_templates
from pilothouse.prompts.registry.export import export_prompts
from pilothouse.prompts.registry.files import MAX_PROMPT_SIZE, PromptFileError, PromptTooLarge, definition
from pilothouse.prompts.registry.labels import protect_label, set_label
from pilothouse.prompts.registry.lookup import (
    get_version_row,
    label_dict,
    list_labels,
    require_prompt,
    resolve_for_call,
    to_label,
)
from pilothouse.prompts.registry.preview import render_preview
from pilothouse.prompts.registry.push import push_definition, push_files
from pilothouse.prompts.registry.refs import MAX_VERSION, PromptRef, check_name, parse_selector
from pilothouse.prompts.registry.templates import TemplateError
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store import prompts as repo
from pilothouse.store.keys import get_key
from pilothouse.store.prompts import LabelRow, PromptRow, VersionRow

router = APIRouter(prefix="/api/prompts", tags=["prompts"])
PULL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,199}(@([1-9][0-9]{0,8}|sha:[0-9a-f]{6,64}|[a-z][a-z0-9._-]{0,99}))?$"
"""A `names` item of a pull: NAME, or NAME@REF (a version, a label, sha:PREFIX), as `refs.parse_ref` reads it."""


class PushFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=500, description="The file's name (its extension sets the format).")
    content: str = Field(max_length=MAX_PROMPT_SIZE, description="The file's text, exactly as on disk.")


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[PushFile] = Field(min_length=1, max_length=1000)
    message: str | None = Field(default=None, max_length=5000, description="Commit message for new versions.")
    author: str | None = Field(default=None, max_length=200, description="Default: the API key's name.")


class PullBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default="production", description="Export the version each prompt's label names.")
    latest: bool = Field(default=False, description="Export each prompt's newest version instead.")
    names: list[Annotated[str, Field(pattern=PULL_NAME_PATTERN)]] | None = Field(
        default=None,
        max_length=1000,
        description="Only these prompts (default: all). NAME, or NAME@REF (a version, label or sha:PREFIX) to "
        "export that version of it; an unknown name is a 404.",
    )


class VersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] = Field(description="The prompt as a mapping in the prompt-file schema.")
    message: str | None = Field(default=None, max_length=5000)
    author: str | None = Field(default=None, max_length=200)


class LabelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, le=MAX_VERSION, description="Point the label at this version.")
    splits: list[dict[str, Any]] | None = Field(default=None, description="Or split traffic: [{version, weight}].")
    reason: str | None = Field(default=None, max_length=2000, description="Why, for the audit log.")

    @model_validator(mode="after")
    def _one_target(self) -> LabelBody:
        if (self.version is None) == (self.splits is None):
            raise ValueError("give either 'version' or 'splits'")
        return self


class RenderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(default="production", description="A version number, a label or sha:PREFIX.")
    variables: dict[str, Any] | None = None


# -- helpers ----------------------------------------------------------------------------------------------------
def _name(name: str) -> str:
    try:
        return check_name(name)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="name") from None


def _ref(name: str, selector: str, param: str = "ref") -> PromptRef:
    try:
        return parse_selector(_name(name), selector)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=param) from None


def _author(conn: Connection, principal: Principal, given: str | None) -> str:
    if given:
        return given
    key = get_key(conn, principal.key_id)
    return key.name if key is not None else principal.key_id


def _invalidate(state: AppState, project_id: str, names: list[str]) -> None:
    """After the commit: this process's gateway sees the moved labels on its next call."""
    if state.gateway.prompts is not None:
        for name in names:
            state.gateway.prompts.invalidate(project_id, name)


def _labels_on(version: int, labels: list[LabelRow]) -> list[str]:
    return [lbl.name for lbl in labels if any(int(s["version"]) == version for s in lbl.splits)]


def version_dict(name: str, row: VersionRow, labels: list[LabelRow]) -> dict[str, Any]:
    template = row.template
    return {
        "name": name,
        "version": row.version,
        "content_hash": row.content_hash,
        "type": template.get("type"),
        "template": template,
        "config": template.get("config") or {},
        "variables": template.get("variables") or {},
        "message": row.message,
        "author": row.author,
        "created_at": row.created_at,
        "source_format": row.source_format,
        "source_text": row.source_text,
        "labels": _labels_on(row.version, labels),
    }


def _summary(row: VersionRow, labels: list[LabelRow]) -> dict[str, Any]:
    return {
        "version": row.version,
        "content_hash": row.content_hash,
        "message": row.message,
        "author": row.author,
        "created_at": row.created_at,
        "labels": _labels_on(row.version, labels),
    }


def _label_out(row: LabelRow) -> dict[str, Any]:
    return label_dict(to_label(row))


def _versions(
    conn: Connection, project_id: str, ref: PromptRef, user: str | None = None
) -> tuple[PromptRow, VersionRow]:
    if user and ref.label is not None:
        chosen = resolve_for_call(conn, project_id, ref, user)
        return get_version_row(conn, project_id, PromptRef(ref.name, version=chosen.version))
    return get_version_row(conn, project_id, ref)


# -- pushing and pulling ----------------------------------------------------------------------------------------
@router.post("/push")
def push(body: PushBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Push prompt files (and their NAME.tests.yaml); each prompt gets a version only if its content changed."""
    require_role(principal, "developer")
    files = [(f.path, f.content) for f in body.files]
    try:
        with state.store.begin() as conn:
            results = push_files(
                conn,
                project_id=principal.project_id,
                files=files,
                actor=principal.key_id,
                author=_author(conn, principal, body.author),
                message=body.message,
            )
    except IntegrityError as exc:
        raise Conflict("another push created the same prompt at the same moment; push again") from exc
    _invalidate(state, principal.project_id, [r["name"] for r in results if r["status"] != "unchanged"])
    return {"results": results}


@router.post("/pull")
def pull(body: PullBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every prompt (or those in `names`) as a file (its text as pushed, or canonical YAML), with its test
    file; read-only."""
    with state.store.connect() as conn:
        exported = export_prompts(conn, principal.project_id, label=body.label, latest=body.latest, names=body.names)
    return exported.to_dict()


@router.post("/{name}/versions")
def create_version(name: str, body: VersionBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Push one prompt given as JSON in the file schema (no file text is kept; pull writes canonical YAML)."""
    require_role(principal, "developer")
    data = {**body.definition}
    data.setdefault("name", _name(name))
    if data["name"] != name:
        raise InvalidRequest(f"the definition names '{data['name']}' but the URL names '{name}'", param="name")
    try:
        parsed = definition(data)
    except TemplateError as exc:
        raise InvalidRequest(exc.message, param=exc.where, code="invalid_prompt") from None
    except PromptTooLarge as exc:
        raise Unprocessable(exc.message, param="definition", code="prompt_too_large") from None
    except (PromptFileError, ValueError) as exc:
        raise InvalidRequest(str(exc), code="invalid_prompt") from None
    try:
        with state.store.begin() as conn:
            result = push_definition(
                conn,
                project_id=principal.project_id,
                definition=parsed,
                actor=principal.key_id,
                author=_author(conn, principal, body.author),
                message=body.message,
            )
    except IntegrityError as exc:
        raise Conflict("another push created the same prompt at the same moment; push again") from exc
    if result.created:
        _invalidate(state, principal.project_id, [name])
    return result.to_dict()


# -- reading ----------------------------------------------------------------------------------------------------
@router.get("")
def list_all(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every prompt with its newest version and its labels."""
    with state.store.connect() as conn:
        prompts = repo.list_prompts(conn, principal.project_id)
        ids = [p.id for p in prompts]
        latest = repo.latest_versions(conn, ids)
        labels = repo.labels_of(conn, ids)
    data = []
    for p in prompts:
        newest = latest.get(p.id)
        data.append(
            {
                "name": p.name,
                "created_at": p.created_at,
                "latest_version": None if newest is None else newest.version,
                "latest_hash": None if newest is None else newest.content_hash,
                "updated_at": None if newest is None else newest.created_at,
                "labels": {lbl.name: _label_out(lbl) for lbl in labels[p.id]},
            }
        )
    return {"data": data}


@router.get("/{name}")
def show(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """A prompt: its versions (newest last), labels and number of test cases."""
    with state.store.connect() as conn:
        prompt = require_prompt(conn, principal.project_id, _name(name))
        versions = repo.list_versions(conn, prompt.id)
        labels = repo.list_labels(conn, prompt.id)
        suite = repo.get_test_suite(conn, prompt.id)
    return {
        "name": prompt.name,
        "created_at": prompt.created_at,
        "created_by": prompt.created_by,
        "versions": [_summary(v, labels) for v in versions],
        "labels": [_label_out(lbl) for lbl in labels],
        "test_cases": None if suite is None else len(suite.cases),
    }


@router.get("/{name}/versions/{ref}")
def show_version(
    name: str, ref: str, state: StateDep, principal: PrincipalDep, user: str | None = None
) -> dict[str, Any]:
    """One version (`ref`: 3, production, sha:PREFIX) with its template and file text. With `user`, a label's
    canary split is applied as the gateway would for that end user."""
    parsed = _ref(name, ref)
    with state.store.connect() as conn:
        prompt, row = _versions(conn, principal.project_id, parsed, user)
        labels = repo.list_labels(conn, prompt.id)
    return version_dict(prompt.name, row, labels)


@router.get("/{name}/diff")
def diff(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    from_ref: Annotated[str, Query(alias="from", description="A version, label or sha:PREFIX.")],
    to_ref: Annotated[str, Query(alias="to")],
) -> dict[str, Any]:
    """Text diffs of each message and the configuration and variables changes between two versions."""
    a_ref, b_ref = _ref(name, from_ref, "from"), _ref(name, to_ref, "to")
    with state.store.connect() as conn:
        _, a = get_version_row(conn, principal.project_id, a_ref)
        _, b = get_version_row(conn, principal.project_id, b_ref)
    result = diff_templates(a.template, b.template, f"{name}@{a.version}", f"{name}@{b.version}")
    return {**result, "from_version": a.version, "to_version": b.version}


# -- labels -----------------------------------------------------------------------------------------------------
@router.get("/{name}/labels")
def labels(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    with state.store.connect() as conn:
        found = list_labels(conn, principal.project_id, _name(name))
    return {"data": [label_dict(lbl) for lbl in found]}


@router.put("/{name}/labels/{label}")
def move_label(name: str, label: str, body: LabelBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Point a label at a version (a rollout or rollback, instant and audited) or split it across versions."""
    require_role(principal, "developer")
    splits = body.splits if body.splits is not None else [{"version": body.version, "weight": 100}]
    with state.store.begin() as conn:
        moved = set_label(
            conn,
            project_id=principal.project_id,
            prompt_name=_name(name),
            label=label,
            splits=splits,
            actor=principal.key_id,
            role=principal.role,
            reason=body.reason,
        )
    _invalidate(state, principal.project_id, [name])
    return label_dict(moved)


def _protect(name: str, label: str, state: AppState, principal: Principal, protected: bool) -> dict[str, Any]:
    with state.store.begin() as conn:
        result = protect_label(
            conn,
            project_id=principal.project_id,
            prompt_name=_name(name),
            label=label,
            protected=protected,
            actor=principal.key_id,
            role=principal.role,
        )
    return label_dict(result)


@router.post("/{name}/labels/{label}/protect")
def protect(name: str, label: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Protect a label: from now on only admin keys may move it (admin only)."""
    return _protect(name, label, state, principal, True)


@router.delete("/{name}/labels/{label}/protect")
def unprotect(name: str, label: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Lift a label's protection (admin only)."""
    return _protect(name, label, state, principal, False)


# -- render previews --------------------------------------------------------------------------------------------
def _render(state: AppState, principal: Principal, name: str, ref: str, variables: Any) -> dict[str, Any]:
    return render_preview(state.store, principal.project_id, _ref(name, ref), variables)


@router.post("/{name}/render")
def render(name: str, body: RenderBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The messages a version renders to with these variables (no model is called)."""
    return _render(state, principal, name, body.ref, body.variables)


@router.get("/{name}/resolve")
def resolve(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    ref: str = "production",
    variables: Annotated[str | None, Query(description="A JSON object of variables.")] = None,
) -> dict[str, Any]:
    """Like POST render, with the variables as a JSON query parameter."""
    values: Any = None
    if variables is not None:
        try:
            values = orjson.loads(variables)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"'variables' must be a JSON object: {exc}", param="variables") from None
    return _render(state, principal, name, ref, values)
