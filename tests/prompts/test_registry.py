"""The prompt registry on SQLite and PostgreSQL: pushes, numbering, references, labels, protection, audit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.errors import Conflict, Forbidden, InvalidRequest, NotFound
from pilothouse.prompts import registry
from pilothouse.prompts.files import parse_prompt_file
from pilothouse.prompts.refs import PromptRef, parse_ref
from pilothouse.store import prompts as repo
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project

SUPPORT = """\
name: support-answer
model: smollm2-135m
temperature: 0
max_tokens: 64
variables:
  question: {type: string}
messages:
  - role: system
    content: You answer customer questions in one short sentence.
  - role: user
    content: "{{ question }}"
"""


def variant(n: int) -> str:
    return SUPPORT.replace("one short sentence", f"one short sentence (variant {n})")


@pytest.fixture
def project(store: Store) -> str:
    with store.begin() as conn:
        return create_project(conn, "prompts-test").id


def push(store: Store, project: str, *files: tuple[str, str], message: str | None = None) -> list[dict[str, Any]]:
    with store.begin() as conn:
        return registry.push_files(conn, project_id=project, files=list(files), actor="key_dev", message=message)


def events(conn: Connection, project: str, action: str) -> list[dict[str, Any]]:
    return [e.to_dict() for e in list_events(conn, project_id=project, limit=1000) if e.action == action]


def test_push_is_idempotent_and_numbers_versions(store: Store, project: str) -> None:
    [first] = push(store, project, ("support-answer.yaml", SUPPORT), message="first")
    assert first["status"] == "created" and first["version"] == 1
    assert first["labels_moved"] == ["latest", "production"]
    [again] = push(store, project, ("support-answer.yaml", SUPPORT + "# just a comment\n"))
    assert again["status"] == "unchanged" and again["version"] == 1 and again["content_hash"] == first["content_hash"]
    [second] = push(store, project, ("support-answer.yaml", variant(2)))
    assert second["status"] == "created" and second["version"] == 2 and second["labels_moved"] == ["latest"]
    [third] = push(store, project, ("support-answer.yaml", SUPPORT))  # back to v1's content: a new version
    assert third["version"] == 3 and third["content_hash"] == first["content_hash"]
    with store.connect() as conn:
        versions = registry.list_versions(conn, project, "support-answer")
        assert [v.version for v in versions] == [1, 2, 3]
        assert versions[0].message == "first" and versions[0].author == "key_dev"
        labels = {lbl.name: lbl for lbl in registry.list_labels(conn, project, "support-answer")}
        assert labels["latest"].splits == [{"version": 3, "weight": 100}]
        assert labels["production"].splits == [{"version": 1, "weight": 100}]  # never moved by a push
        created = events(conn, project, "prompt.version.create")
        assert [e["details"]["version"] for e in created] == [1, 2, 3]
        moves = events(conn, project, "prompt.label.move")
        assert [(e["details"]["label"], e["details"]["to"]) for e in moves] == [
            ("production", [{"version": 1, "weight": 100}])
        ]
        row = repo.get_version(conn, versions[0].prompt_id, 1)
        assert row is not None and row.source_text == SUPPORT and row.source_format == "yaml"


def test_references_resolve(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    with store.connect() as conn:
        v2 = registry.get_version(conn, project, parse_ref("support-answer@2"))
        assert v2.version == 2 and v2.name == "support-answer" and "variant 2" in str(v2.template)
        assert registry.get_version(conn, project, parse_ref("support-answer")).version == 1
        assert registry.get_version(conn, project, parse_ref("support-answer@latest")).version == 2
        assert registry.get_version(conn, project, parse_ref(f"support-answer@sha:{v2.content_hash[:6]}")) == v2
        assert registry.get_version(conn, project, PromptRef("support-answer", sha=v2.content_hash)) == v2
        with pytest.raises(NotFound, match="has no version 9 \\(its newest is 2\\)"):
            registry.get_version(conn, project, parse_ref("support-answer@9"))
        with pytest.raises(NotFound, match="has no label 'staging' \\(its labels: latest, production\\)"):
            registry.get_version(conn, project, parse_ref("support-answer@staging"))
        with pytest.raises(NotFound, match="no prompt named 'nope'"):
            registry.get_version(conn, project, parse_ref("nope"))
        with pytest.raises(NotFound, match="no version whose content hash starts with"):
            registry.get_version(conn, project, parse_ref("support-answer@sha:" + "0" * 40))


def test_ambiguous_sha_prefix_is_a_conflict(store: Store, project: str) -> None:
    # Hashes sharing their first 6 digits are rare: store a second one with v1's prefix directly.
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    with store.begin() as conn:
        prompt = registry.require_prompt(conn, project, "support-answer")
        v1 = repo.get_version(conn, prompt.id, 1)
        assert v1 is not None
        repo.insert_version(
            conn,
            prompt_id=prompt.id,
            version=3,
            content_hash=v1.content_hash[:6] + ("f" if v1.content_hash[6] != "f" else "e") * 58,
            template=v1.template,
            source_text=None,
            source_format=None,
            message=None,
            author=None,
        )
    with store.connect() as conn, pytest.raises(Conflict, match="ambiguous") as caught:
        registry.get_version(conn, project, parse_ref(f"support-answer@sha:{v1.content_hash[:6]}"))
    assert caught.value.status == 409


def test_labels_move_instantly_and_are_audited(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    seen: list[tuple[str, str]] = []

    def listener(project_id: str, name: str) -> None:
        seen.append((project_id, name))

    registry.add_label_listener(listener)
    try:
        with store.begin() as conn:
            label = registry.set_label(
                conn,
                project_id=project,
                prompt_name="support-answer",
                label="production",
                splits=[{"version": 2, "weight": 100}],
                actor="key_dev",
                role="developer",
                reason="rollout",
            )
        assert label.splits == [{"version": 2, "weight": 100}] and label.updated_by == "key_dev"
        with store.begin() as conn:
            registry.set_label(
                conn,
                project_id=project,
                prompt_name="support-answer",
                label="staging",
                splits=[{"version": 1, "weight": 100}],
                actor="key_dev",
                role="developer",
            )
    finally:
        registry.remove_label_listener(listener)
    assert seen == [(project, "support-answer")] * 2
    with store.connect() as conn:
        assert registry.get_version(conn, project, parse_ref("support-answer")).version == 2
        assert registry.get_version(conn, project, parse_ref("support-answer@staging")).version == 1
        moves = events(conn, project, "prompt.label.move")
        assert moves[-2]["target"] == "prompt:support-answer@production"
        assert moves[-2]["details"] == {
            "prompt": "support-answer",
            "label": "production",
            "from": [{"version": 1, "weight": 100}],
            "to": [{"version": 2, "weight": 100}],
            "reason": "rollout",
        }
        assert moves[-1]["details"]["from"] is None
        assert verify_chain(conn)[1] is None


@pytest.mark.parametrize(
    ("label", "splits", "error", "message"),
    [
        ("latest", [{"version": 1, "weight": 100}], InvalidRequest, "pushes move it"),
        ("Bad Label", [{"version": 1, "weight": 100}], InvalidRequest, "invalid label"),
        ("staging", [], InvalidRequest, "non-empty list"),
        ("staging", [{"version": 1, "weight": 0}], InvalidRequest, "greater than 0"),
        ("staging", [{"version": "1", "weight": 5}], InvalidRequest, "version number"),
        ("staging", [{"version": 1, "weight": 5}, {"version": 1, "weight": 5}], InvalidRequest, "appears twice"),
        ("staging", [{"version": 5, "weight": 100}], NotFound, "has no version 5"),
    ],
)
def test_set_label_validates(
    store: Store, project: str, label: str, splits: list[dict[str, Any]], error: type[Exception], message: str
) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    with store.begin() as conn, pytest.raises(error, match=message):
        registry.set_label(
            conn, project_id=project, prompt_name="support-answer", label=label, splits=splits, actor="k", role="admin"
        )


def test_protected_labels_need_an_admin(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    move = {"project_id": project, "prompt_name": "support-answer", "label": "production", "actor": "k"}
    with store.begin() as conn, pytest.raises(Forbidden, match="admin key"):
        registry.protect_label(conn, **move, protected=True, role="developer")
    with store.begin() as conn:
        assert registry.protect_label(conn, **move, protected=True, role="admin").protected
    with store.begin() as conn, pytest.raises(Forbidden, match="'production' of prompt 'support-answer' is protected"):
        registry.set_label(conn, **move, splits=[{"version": 2, "weight": 100}], role="developer")
    with store.begin() as conn:
        moved = registry.set_label(conn, **move, splits=[{"version": 2, "weight": 100}], role="admin")
        assert moved.protected and moved.splits == [{"version": 2, "weight": 100}]
    with store.begin() as conn:
        assert not registry.protect_label(conn, **move, protected=False, role="admin").protected
    with store.begin() as conn:
        registry.set_label(conn, **move, splits=[{"version": 1, "weight": 100}], role="developer")
    with store.begin() as conn, pytest.raises(InvalidRequest, match="cannot be protected"):
        registry.protect_label(conn, **{**move, "label": "latest"}, protected=True, role="admin")
    with store.begin() as conn, pytest.raises(NotFound, match="no label 'qa'"):
        registry.protect_label(conn, **{**move, "label": "qa"}, protected=True, role="admin")
    with store.connect() as conn:
        actions = [e.action for e in list_events(conn, project_id=project, limit=1000)]
        assert actions.count("prompt.label.protect") == 1 and actions.count("prompt.label.unprotect") == 1


def test_canary_splits_resolve_per_sticky_key(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    with store.begin() as conn:
        registry.set_label(
            conn,
            project_id=project,
            prompt_name="support-answer",
            label="production",
            splits=[{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
            actor="k",
            role="admin",
        )
    ref = parse_ref("support-answer@production")
    with store.connect() as conn:
        chosen = {registry.resolve_for_call(conn, project, ref, f"user-{i}").version for i in range(40)}
        assert chosen == {1, 2}
        assert registry.resolve_for_call(conn, project, ref, "alice") == registry.resolve_for_call(
            conn, project, ref, "alice"
        )
        assert registry.get_version(conn, project, ref).version == 1  # the baseline: a tie goes to the lower
        assert registry.resolve_for_call(conn, project, parse_ref("support-answer@2"), "x").version == 2


def test_rollback_rule(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    rule = {"metric": "error_rate", "min_samples": 20, "alpha": 0.05}
    with store.begin() as conn:
        label = registry.set_rollback_rule(
            conn, project_id=project, prompt_name="support-answer", label="production", rule=rule, actor="k"
        )
    assert label.rollback_rule == rule
    with store.begin() as conn, pytest.raises(InvalidRequest, match="alpha"):
        registry.set_rollback_rule(
            conn,
            project_id=project,
            prompt_name="support-answer",
            label="production",
            rule={"metric": "error_rate", "alpha": 2},
            actor="k",
        )
    with store.begin() as conn:
        registry.set_rollback_rule(
            conn, project_id=project, prompt_name="support-answer", label="production", rule=None, actor="k"
        )
        label2 = registry.get_label(conn, project, "support-answer", "production")
    assert label2 is not None and label2.rollback_rule is None


def test_test_suites_are_stored_as_pushed(store: Store, project: str) -> None:
    tests = "cases:\n  - name: parcel\n    variables: {question: 'Where?'}\n"
    results = push(store, project, ("support-answer.yaml", SUPPORT), ("support-answer.tests.yaml", tests))
    assert [(r["kind"], r["status"]) for r in results] == [("prompt", "created"), ("tests", "created")]
    assert push(store, project, ("support-answer.tests.yaml", tests))[0]["status"] == "unchanged"
    with store.connect() as conn:
        assert registry.get_test_suite(conn, project, "support-answer") == [
            {"name": "parcel", "variables": {"question": "Where?"}}
        ]
        row = registry.get_test_suite_row(conn, project, "support-answer")
        assert row is not None and row.source_text == tests
    updated = push(store, project, ("support-answer.tests.yaml", "- {name: other}\n"))
    assert updated[0]["status"] == "updated"
    with store.connect() as conn:
        assert registry.get_test_suite(conn, project, "support-answer") == [{"name": "other"}]


def test_a_bad_file_pushes_nothing(store: Store, project: str) -> None:
    broken = "name: other\nmessages:\n  - role: user\n    content: '{{ x }'\n"
    with pytest.raises(InvalidRequest) as caught:
        push(store, project, ("support-answer.yaml", SUPPORT), ("other.yaml", broken), ("x.txt", ""))
    assert "2 files are invalid, nothing was pushed" in caught.value.message
    assert "other.yaml line 4" in caught.value.message and "x.txt: not a prompt file" in caught.value.message
    with pytest.raises(InvalidRequest, match="also defined in"):
        push(store, project, ("support-answer.yaml", SUPPORT), ("copy.yaml", SUPPORT))
    with pytest.raises(InvalidRequest, match=r"no prompt file lonely\.yaml"):
        push(store, project, ("lonely.tests.yaml", "[]\n"))
    with store.connect() as conn:
        assert repo.list_prompts(conn, project) == []


def test_api_created_versions_keep_no_file_text(store: Store, project: str) -> None:
    definition = parse_prompt_file("x.yaml", SUPPORT)
    plain = type(definition)(definition.name, definition.template, definition.content_hash)
    with store.begin() as conn:
        result = registry.push_definition(conn, project_id=project, definition=plain, actor="k", author="ci")
    assert result.created and result.version.author == "ci"
    with store.connect() as conn:
        row = repo.get_version(conn, result.version.prompt_id, 1)
    assert row is not None and row.source_text is None and row.source_format is None
    # Pushing the same content as a file afterwards is unchanged: the hash covers content, not its form.
    assert push(store, project, ("support-answer.yaml", SUPPORT))[0]["status"] == "unchanged"


def test_projects_are_separate(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    with store.begin() as conn:
        other = create_project(conn, "other").id
    with store.connect() as conn, pytest.raises(NotFound):
        registry.get_version(conn, other, parse_ref("support-answer"))
    assert push(store, other, ("support-answer.yaml", SUPPORT))[0]["version"] == 1
