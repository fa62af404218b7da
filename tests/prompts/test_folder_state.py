"""The prompt folder's state file: what pull may overwrite (files as last pushed or pulled) and what it may not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilothouse.prompts.registry.folder_state import (
    STATE_FILE,
    FolderState,
    FolderStateError,
    apply_pull,
    plan_pull,
    record_push,
)

V1 = "name: a\nmessages:\n  - role: user\n    content: hi\n"
V4 = "# draft\nname: a\nmessages:\n  - role: user\n    content: hello there\n"


def incoming(text: str, name: str = "a.yaml", version: int = 1) -> list[dict[str, object]]:
    return [{"kind": "prompt", "name": "a", "version": version, "path": name, "content": text}]


def test_a_new_folder_is_written_and_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    state = FolderState.load(folder)
    plan = plan_pull(folder, incoming(V1), state)
    assert [f.action for f in plan.files] == ["create"]
    apply_pull(folder, plan, state)
    assert (folder / "a.yaml").read_text() == V1
    saved = json.loads((folder / STATE_FILE).read_text())
    assert saved["files"]["a.yaml"]["prompt"] == "a" and saved["files"]["a.yaml"]["version"] == 1
    assert FolderState.load(folder).known("a.yaml", V1.encode())
    assert [f.action for f in plan_pull(folder, incoming(V1), FolderState.load(folder)).files] == ["unchanged"]


def test_a_local_edit_is_a_conflict_and_nothing_is_written(tmp_path: Path) -> None:
    folder = tmp_path
    state = FolderState.load(folder)
    apply_pull(folder, plan_pull(folder, incoming(V1), state), state)
    (folder / "a.yaml").write_text(V4)  # a local draft, never pushed
    state = FolderState.load(folder)
    plan = plan_pull(folder, incoming(V1), state)
    [conflict] = plan.conflicts
    assert conflict.action == "conflict"
    assert "-    content: hello there\n" in conflict.diff and "+    content: hi\n" in conflict.diff
    assert conflict.diff.startswith("--- a.yaml (local)\n+++ a.yaml (pulled v1)\n")
    assert conflict.changed_lines == (1, 2)
    with pytest.raises(ValueError, match=r"local changes in a\.yaml"):
        apply_pull(folder, plan, state)
    assert (folder / "a.yaml").read_text() == V4
    apply_pull(folder, plan, state, force=True)
    assert (folder / "a.yaml").read_text() == V1


def test_a_pushed_file_may_be_replaced_and_an_unknown_one_may_not(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(V4)
    # No state file (a fresh clone): a file that differs from what pull writes is protected.
    assert plan_pull(tmp_path, incoming(V1), FolderState.load(tmp_path)).conflicts
    record_push(
        tmp_path, [{"path": "a.yaml", "content": V4}], [{"kind": "prompt", "path": "a.yaml", "name": "a", "version": 4}]
    )
    state = FolderState.load(tmp_path)
    assert state.files["a.yaml"]["version"] == 4 and state.files["a.yaml"]["via"] == "push"
    plan = plan_pull(tmp_path, incoming(V1), state)
    assert [f.action for f in plan.files] == ["update"]  # v4 is on the server: nothing is lost
    apply_pull(tmp_path, plan, state)
    assert (tmp_path / "a.yaml").read_text() == V1


def test_unsafe_names_and_a_broken_state_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsafe file name"):
        plan_pull(tmp_path, incoming(V1, name="../a.yaml"), FolderState.load(tmp_path))
    with pytest.raises(ValueError, match="unsafe file name"):
        plan_pull(tmp_path, incoming(V1, name=STATE_FILE), FolderState.load(tmp_path))
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(FolderStateError, match="delete it to start afresh"):
        FolderState.load(tmp_path)
    (tmp_path / STATE_FILE).write_text('{"files": {"a.yaml": {"version": 1}}}')
    with pytest.raises(FolderStateError, match="sha256"):
        FolderState.load(tmp_path)
