"""The prompt registry methods of the `Pilothouse` client (a mixin, so sdk/client.py stays small).

ph = Pilothouse()
ph.push_prompts("prompts/", message="shorter answers")      # a folder, or [{"path": ..., "content": ...}]
ph.set_label("support-answer", "production", version=2)     # a rollout (or rollback)
print(ph.diff_prompt("support-answer", "1", "2")["messages"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any


def read_prompt_folder(directory: str | Path) -> list[dict[str, str]]:
    """The prompt and test files directly in `directory`, as [{path, content}] for `push_prompts`."""
    from pilothouse.prompts.registry.files import discover

    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder of prompt files")
    return [{"path": p.name, "content": p.read_bytes().decode("utf-8")} for p in discover(root)]


class PromptsMixin:
    if TYPE_CHECKING:

        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def push_prompts(
        self,
        files: str | Path | Sequence[Mapping[str, str]],
        *,
        message: str | None = None,
        author: str | None = None,
    ) -> list[dict[str, Any]]:
        """Push a folder (or [{path, content}]); one result per file: a prompt `created` (a new version),
        `source_updated` (same content, its stored text replaced) or `unchanged`; tests created/updated/unchanged."""
        batch = read_prompt_folder(files) if isinstance(files, str | Path) else [dict(f) for f in files]
        body = {"files": batch, "message": message, "author": author}
        result: list[dict[str, Any]] = self.request("POST", "/api/prompts/push", json=body)["results"]
        return result

    def pull_prompts(
        self, *, label: str = "production", latest: bool = False, names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Every prompt's file (and test file) at `label`, or at its newest version with `latest=True`:
        {"files": [{kind, name, version, path, content}], "skipped": [prompts without that label]}.
        `names`: only these prompts (NAME, or NAME@REF for that version of it)."""
        body: dict[str, Any] = {"label": None if latest else label, "latest": latest}
        if names is not None:
            body["names"] = list(names)
        result: dict[str, Any] = self.request("POST", "/api/prompts/pull", json=body)
        return result

    def create_prompt_version(
        self, name: str, definition: Mapping[str, Any], *, message: str | None = None
    ) -> dict[str, Any]:
        """Push one prompt given as a mapping in the file schema (no file text is kept)."""
        body = {"definition": dict(definition), "message": message}
        result: dict[str, Any] = self.request("POST", f"/api/prompts/{name}/versions", json=body)
        return result

    def list_prompts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/prompts")["data"]
        return result

    def get_prompt(self, name: str) -> dict[str, Any]:
        """A prompt with its versions and labels."""
        result: dict[str, Any] = self.request("GET", f"/api/prompts/{name}")
        return result

    def get_prompt_version(self, name: str, ref: str = "production", *, user: str | None = None) -> dict[str, Any]:
        """One version (`ref`: a number, a label or sha:PREFIX) with its template and file text. With `user`,
        a label's canary split is applied for that end user."""
        params = {"user": user} if user else {}
        result: dict[str, Any] = self.request("GET", f"/api/prompts/{name}/versions/{ref}", params=params)
        return result

    def diff_prompt(self, name: str, from_ref: str, to_ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/api/prompts/{name}/diff", params={"from": from_ref, "to": to_ref}
        )
        return result

    def set_label(
        self,
        name: str,
        label: str,
        version: int | None = None,
        *,
        splits: Sequence[Mapping[str, Any]] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Point `label` at `version`, or split it: splits=[{"version": 1, "weight": 90}, {"version": 2, ...}]."""
        body: dict[str, Any] = {"reason": reason}
        if splits is not None:
            body["splits"] = [dict(s) for s in splits]
        else:
            body["version"] = version
        result: dict[str, Any] = self.request("PUT", f"/api/prompts/{name}/labels/{label}", json=body)
        return result

    def protect_label(self, name: str, label: str, protected: bool = True) -> dict[str, Any]:
        """Protect a label (only admins may move it) or, with protected=False, lift that."""
        method = "POST" if protected else "DELETE"
        result: dict[str, Any] = self.request(method, f"/api/prompts/{name}/labels/{label}/protect")
        return result

    def render_prompt(
        self, name: str, ref: str = "production", variables: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The messages a version renders to with these variables (a preview; no model is called)."""
        body = {"ref": ref, "variables": dict(variables or {})}
        result: dict[str, Any] = self.request("POST", f"/api/prompts/{name}/render", json=body)
        return result

    def canary_status(self, name: str, label: str) -> dict[str, Any]:
        """A canary's state: arms, samples, estimates with their always-valid interval, the decision and why,
        and the canary's audit events so far."""
        result: dict[str, Any] = self.request("GET", f"/api/prompts/{name}/labels/{label}/canary/status")
        return result
