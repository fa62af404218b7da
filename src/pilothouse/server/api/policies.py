"""/api/policies: guard policies (docs/security.md#guard-policies), versioned like prompts.

Policies are governance: pushing and disabling one needs the admin role; reading them the viewer role. All act
in the key's own project. A push validates the file (fields, installed scanners, scanner options: the
scanners are built, so a push fails rather than a later request) and makes a new version when the body changed;
the latest version of an enabled policy is in force, on this replica at once and on the others within
`limits.definitions_ttl_s`. Pushes and disables are audit events.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from pilothouse.audit.chain import append_event
from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.guards.policy.engine import ScannerCache, compile_policy
from pilothouse.guards.policy.loader import MAX_POLICY_BYTES, PolicyError, parse_policy
from pilothouse.guards.policy.model import Policy
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store import policies as repo

router = APIRouter(prefix="/api/policies", tags=["policies"])


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: StrictStr = Field(min_length=1, max_length=MAX_POLICY_BYTES, description="The policy file (YAML).")


class Summary(BaseModel):
    name: str
    version: int = Field(description="The latest version (the one in force while the policy is enabled).")
    enabled: bool
    mode: str = Field(description="`enforce`, or `shadow` (evaluated and recorded, never acted on).")
    description: str
    content_hash: str
    updated_at: float
    updated_by: str | None


class Pushed(Summary):
    created: bool = Field(description="False: the body equals the latest version's; no version was made.")
    enabled_again: bool = Field(description="The policy was disabled; the push enabled it.")


class Detail(Summary):
    shown_version: int = Field(description="The version shown (`?version=N`, default the latest).")
    body: dict[str, Any] = Field(description="The validated policy of the version shown.")
    source_text: str | None = Field(description="The file as pushed.")
    author: str | None
    created_at: float


class VersionInfo(BaseModel):
    version: int
    content_hash: str
    author: str | None
    created_at: float


class Disabled(Summary):
    changed: bool = Field(description="False: it was already disabled.")


def content_hash(policy: Policy) -> str:
    """SHA-256 of the validated policy's canonical JSON: comments and layout do not make a new version."""
    return hashlib.sha256(orjson.dumps(policy.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _summary(policy: repo.PolicyRow, version: repo.PolicyVersionRow) -> dict[str, Any]:
    return {
        "name": policy.name,
        "version": version.version,
        "enabled": policy.enabled,
        "mode": str(version.body.get("mode", "enforce")),
        "description": str(version.body.get("description", "")),
        "content_hash": version.content_hash,
        "updated_at": policy.updated_at,
        "updated_by": policy.updated_by,
    }


def _scanners(state: AppState) -> ScannerCache:
    guards = state.pipeline.services.guards
    return guards.active.cache if guards is not None else ScannerCache()


async def _reload(state: AppState) -> None:
    guards = state.pipeline.services.guards
    if guards is not None:
        await guards.reload()


def _found(conn: Any, project_id: str, name: str) -> tuple[repo.PolicyRow, repo.PolicyVersionRow]:
    policy = repo.get_policy(conn, project_id, name)
    latest = None if policy is None else repo.latest_version(conn, policy.id)
    if policy is None or latest is None:
        raise NotFound(f"no policy named {name!r} in this project", code="policy_not_found")
    return policy, latest


@router.post("", response_model=Pushed)
async def push_policy(body: PushBody, state: StateDep, principal: PrincipalDep) -> Pushed:
    """Validate a policy file and store it as the policy's next version (none when its body is unchanged);
    the policy is enabled. The scanners it names are built now, so bad options fail here."""
    require_role(principal, "admin")

    def write() -> Pushed:
        try:
            policy = parse_policy(body.content)
            compile_policy(policy, 0, _scanners(state))
        except PolicyError as exc:
            raise InvalidRequest(str(exc), code="invalid_policy", param="content") from None
        digest = content_hash(policy)
        with state.store.begin() as conn:
            pushed = repo.push_policy(
                conn,
                project_id=principal.project_id,
                name=policy.name,
                body=policy.model_dump(mode="json"),
                content_hash=digest,
                source_text=body.content,
                actor=principal.key_id,
            )
            if pushed.created or pushed.enabled_again:
                append_event(
                    conn,
                    actor=principal.key_id,
                    action="policy.push",
                    target=policy.name,
                    project_id=principal.project_id,
                    details={
                        "version": pushed.version.version,
                        "content_hash": digest,
                        "created": pushed.created,
                        "enabled_again": pushed.enabled_again,
                    },
                )
        return Pushed(
            **_summary(pushed.policy, pushed.version), created=pushed.created, enabled_again=pushed.enabled_again
        )

    pushed = await asyncio.to_thread(write)
    await _reload(state)
    return pushed


@router.get("", response_model=list[Summary])
async def list_policies(state: StateDep, principal: PrincipalDep) -> list[Summary]:
    """Every policy of the key's project, with its latest version."""
    require_role(principal, "viewer")

    def read() -> list[Summary]:
        with state.store.connect() as conn:
            return [Summary(**_summary(p, v)) for p, v in repo.list_policies(conn, principal.project_id)]

    return await asyncio.to_thread(read)


@router.get("/{name}", response_model=Detail)
async def show_policy(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A version (default: the latest).")] = None,
) -> Detail:
    """A policy: its latest version, or `version`, with the validated body and the file as pushed."""
    require_role(principal, "viewer")

    def read() -> Detail:
        with state.store.connect() as conn:
            policy, latest = _found(conn, principal.project_id, name)
            shown = latest if version is None else repo.get_version(conn, policy.id, version)
        if shown is None:
            raise NotFound(f"policy {name!r} has no version {version}", code="policy_version_not_found")
        return Detail(
            **_summary(policy, latest),
            shown_version=shown.version,
            body=shown.body,
            source_text=shown.source_text,
            author=shown.author,
            created_at=shown.created_at,
        )

    return await asyncio.to_thread(read)


@router.get("/{name}/versions", response_model=list[VersionInfo])
async def policy_versions(name: str, state: StateDep, principal: PrincipalDep) -> list[VersionInfo]:
    """Every version of a policy, newest first."""
    require_role(principal, "viewer")

    def read() -> list[VersionInfo]:
        with state.store.connect() as conn:
            policy, _ = _found(conn, principal.project_id, name)
            return [
                VersionInfo(version=v.version, content_hash=v.content_hash, author=v.author, created_at=v.created_at)
                for v in repo.list_versions(conn, policy.id)
            ]

    return await asyncio.to_thread(read)


@router.post("/{name}/disable", response_model=Disabled)
async def disable_policy(name: str, state: StateDep, principal: PrincipalDep) -> Disabled:
    """Stop applying a policy (its versions are kept; pushing it again enables it)."""
    require_role(principal, "admin")

    def write() -> Disabled:
        with state.store.begin() as conn:
            policy, latest = _found(conn, principal.project_id, name)
            changed = policy.enabled
            if changed:
                repo.set_enabled(conn, policy, False, principal.key_id)
                append_event(
                    conn,
                    actor=principal.key_id,
                    action="policy.disable",
                    target=name,
                    project_id=principal.project_id,
                    details={"version": latest.version},
                )
            policy = repo.get_policy(conn, principal.project_id, name) or policy
        return Disabled(**_summary(policy, latest), changed=changed)

    disabled = await asyncio.to_thread(write)
    await _reload(state)
    return disabled
