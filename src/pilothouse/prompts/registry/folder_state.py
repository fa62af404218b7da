"""What a prompt folder last exchanged with the server, so `prompt pull` never overwrites an edit silently.

`pilothouse prompt push DIR` and `pilothouse prompt pull DIR` record, in `DIR/.pilothouse-prompts.json`, the
SHA-256 of each file's text as last pushed or pulled (with the prompt and version it was). A pull then sorts
every file it would write:

- `create`: no such file in the folder;
- `unchanged`: the file already has exactly the pulled text;
- `update`: the file differs from the pulled text but is what was last pushed or pulled, so nothing made only
  here is lost (the text it held is on the server);
- `conflict`: the file differs from the pulled text and from what was last pushed or pulled (or was never
  pushed or pulled from here): a local edit. A pull with conflicts writes nothing unless forced, and shows the
  unified diff of what it would change.

Stdlib only: the CLI imports this on every push and pull.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = ".pilothouse-prompts.json"
_FORMAT = 1


class FolderStateError(ValueError):
    """The state file exists but cannot be read as one (the message says which file and how to recover)."""


def text_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FolderState:
    """The recorded files of one folder: {file name: {sha256, prompt, version, via, at}}."""

    directory: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.directory / STATE_FILE

    @classmethod
    def load(cls, directory: Path) -> FolderState:
        """The folder's state; empty when it has no state file (a new folder, or a fresh clone)."""
        path = directory / STATE_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(directory)
        except OSError as exc:
            raise FolderStateError(f"{path}: {exc}") from None
        try:
            data = json.loads(raw)
            files = data["files"]
            if not isinstance(files, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
            ):
                raise ValueError("'files' must map file names to {sha256, ...}")
        except (ValueError, KeyError, TypeError) as exc:
            raise FolderStateError(
                f"{path} is not a prompt folder state file ({exc}); delete it to start afresh (pull then only "
                "overwrites files that already equal what it writes)"
            ) from None
        return cls(directory, dict(files))

    def known(self, name: str, data: bytes) -> bool:
        """Whether `data` is the text of file `name` as last pushed or pulled here."""
        entry = self.files.get(name)
        return entry is not None and entry["sha256"] == text_hash(data)

    def record(self, name: str, data: bytes, *, prompt: str | None, version: int | None, via: str) -> None:
        self.files[name] = {
            "sha256": text_hash(data),
            "prompt": prompt,
            "version": version,
            "via": via,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def save(self) -> None:
        """Write the state file (through a temporary file, so a crash leaves the old one or the new one)."""
        body = json.dumps({"format": _FORMAT, "files": dict(sorted(self.files.items()))}, indent=2) + "\n"
        tmp = self.path.with_name(f"{STATE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, self.path)


@dataclass(frozen=True)
class PlannedFile:
    """One file a pull would write, what writing it does, and the diff of the change (local → pulled)."""

    name: str
    prompt: str
    version: int | None
    data: bytes
    action: str  # create | unchanged | update | conflict
    diff: str = ""

    @property
    def changed_lines(self) -> tuple[int, int]:
        """(lines added, lines removed) by writing the file."""
        added = removed = 0
        for line in self.diff.splitlines():
            if line.startswith("+") and not line.startswith("+++"):
                added += 1
            elif line.startswith("-") and not line.startswith("---"):
                removed += 1
        return added, removed


@dataclass(frozen=True)
class PullPlan:
    files: list[PlannedFile]

    @property
    def conflicts(self) -> list[PlannedFile]:
        return [f for f in self.files if f.action == "conflict"]


def _diff(name: str, local: bytes, pulled: bytes, version: int | None) -> str:
    where = "pulled" if version is None else f"pulled v{version}"
    lines = difflib.unified_diff(
        local.decode("utf-8", errors="replace").splitlines(keepends=True),
        pulled.decode("utf-8", errors="replace").splitlines(keepends=True),
        f"{name} (local)",
        f"{name} ({where})",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def plan_pull(directory: Path, incoming: list[dict[str, Any]], state: FolderState) -> PullPlan:
    """Sort the server's files ({path, name, version?, content}) into create/unchanged/update/conflict.
    ValueError if a path is not a plain file name (a server must not write outside the folder)."""
    planned: list[PlannedFile] = []
    for item in incoming:
        name = Path(item["path"]).name
        if name != item["path"] or name.startswith(".") or name in ("", ".."):
            raise ValueError(f"the server sent an unsafe file name {item['path']!r}")
        data = str(item["content"]).encode("utf-8")
        target = directory / name
        version = item.get("version")
        if not target.is_file():
            planned.append(PlannedFile(name, item["name"], version, data, "create"))
            continue
        local = target.read_bytes()
        if local == data:
            planned.append(PlannedFile(name, item["name"], version, data, "unchanged"))
            continue
        action = "update" if state.known(name, local) else "conflict"
        planned.append(PlannedFile(name, item["name"], version, data, action, _diff(name, local, data, version)))
    return PullPlan(planned)


def apply_pull(directory: Path, plan: PullPlan, state: FolderState, *, force: bool = False) -> None:
    """Write the planned files and record them. With conflicts and without `force`, write nothing
    (ValueError): the caller shows the plan's diffs first."""
    if plan.conflicts and not force:
        names = ", ".join(f.name for f in plan.conflicts)
        raise ValueError(f"local changes in {names}")
    directory.mkdir(parents=True, exist_ok=True)
    for f in plan.files:
        if f.action != "unchanged":
            (directory / f.name).write_bytes(f.data)
        state.record(f.name, f.data, prompt=f.prompt, version=f.version, via="pull")
    state.save()


def record_push(directory: Path, files: list[dict[str, str]], results: list[dict[str, Any]]) -> FolderState:
    """After a successful push of `files` ({path, content}, paths being names in `directory`): record each
    file's text with the prompt and version the server reported for it."""
    state = FolderState.load(directory)
    by_path = {r.get("path"): r for r in results}
    for f in files:
        result = by_path.get(f["path"], {})
        version = result.get("version") if result.get("kind") == "prompt" else None
        state.record(f["path"], f["content"].encode("utf-8"), prompt=result.get("name"), version=version, via="push")
    state.save()
    return state
