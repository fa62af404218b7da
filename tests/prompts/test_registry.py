"""The prompt registry on SQLite and PostgreSQL: pushes, numbering, references, labels, protection, audit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.errors import Conflict, Forbidden, InvalidRequest, NotFound
from pilothouse.prompts.registry.files import parse_prompt_file
from pilothouse.prompts.registry.labels import (
    add_label_listener,
    protect_label,
    remove_label_listener,
    set_label,
    set_rollback_rule,
)
from pilothouse.prompts.registry.lookup import (
    get_label,
    get_test_suite,
    get_test_suite_row,
    get_version,
    list_labels,
    list_versions,
    require_prompt,
    resolve_for_call,
)
from pilothouse.prompts.registry.push import push_definition, push_files
from pilothouse.prompts.registry.refs import PromptRef, parse_ref
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
        return push_files(conn, project_id=project, files=list(files), actor="key_dev", message=message)


def events(conn: Connection, project: str, action: str) -> list[dict[str, Any]]:
    return [e.to_dict() for e in list_events(conn, project_id=project, limit=1000) if e.action == action]


def test_push_is_idempotent_and_numbers_versions(store: Store, project: str) -> None:
    [first] = push(store, project, ("support-answer.yaml", SUPPORT), message="first")
    assert first["status"] == "created" and first["version"] == 1
    assert first["labels_moved"] == ["latest", "production"]
    [same] = push(store, project, ("support-answer.yaml", SUPPORT))
    assert same["status"] == "unchanged" and same["version"] == 1 and same["content_hash"] == first["content_hash"]
    [again] = push(store, project, ("support-answer.yaml", SUPPORT + "# just a comment\n"))
    assert again["status"] == "source_updated" and again["version"] == 1
    assert again["content_hash"] == first["content_hash"] and again["labels_moved"] == []
    [second] = push(store, project, ("support-answer.yaml", variant(2)))
    assert second["status"] == "created" and second["version"] == 2 and second["labels_moved"] == ["latest"]
    [third] = push(store, project, ("support-answer.yaml", SUPPORT))  # back to v1's content: a new version
    assert third["version"] == 3 and third["content_hash"] == first["content_hash"]
    with store.connect() as conn:
        versions = list_versions(conn, project, "support-answer")
        assert [v.version for v in versions] == [1, 2, 3]
        assert versions[0].message == "first" and versions[0].author == "key_dev"
        labels = {lbl.name: lbl for lbl in list_labels(conn, project, "support-answer")}
        assert labels["latest"].splits == [{"version": 3, "weight": 100}]
        assert labels["production"].splits == [{"version": 1, "weight": 100}]  # never moved by a push
        created = events(conn, project, "prompt.version.create")
        assert [e["details"]["version"] for e in created] == [1, 2, 3]
        moves = events(conn, project, "prompt.label.move")
        assert [(e["details"]["label"], e["details"]["to"]) for e in moves] == [
            ("production", [{"version": 1, "weight": 100}])
        ]
        row = repo.get_version(conn, versions[0].prompt_id, 1)
        assert row is not None and row.source_text == SUPPORT + "# just a comment\n" and row.source_format == "yaml"


def test_a_comment_only_edit_updates_the_stored_text_of_the_same_version(store: Store, project: str) -> None:
    """Lossless: the latest pushed text comes back byte for byte, and a comment, whitespace or key-order edit
    is no new version; the text it replaces is kept in the audit event's diff."""
    [first] = push(store, project, ("support-answer.yaml", SUPPORT), message="first")
    edits = [
        "# Owner: the support team\n" + SUPPORT,  # a comment
        SUPPORT.replace("temperature: 0\nmax_tokens: 64", "max_tokens: 64\ntemperature: 0"),  # key order
        SUPPORT.replace("{type: string}", "{ type: string }") + "\n",  # whitespace
    ]
    for edit in edits:
        [result] = push(store, project, ("support-answer.yaml", edit), message="reworded")
        assert (result["status"], result["version"]) == ("source_updated", 1)
        assert result["content_hash"] == first["content_hash"]
    with store.connect() as conn:
        version = get_version(conn, project, parse_ref("support-answer@1"))
        row = repo.get_version(conn, version.prompt_id, 1)
        assert row is not None and row.source_text == edits[-1]
        assert [v.version for v in list_versions(conn, project, "support-answer")] == [1]
        assert version.message == "first"  # the version's own message stays
        updates = events(conn, project, "prompt.version.source_update")
        assert verify_chain(conn)[1] is None
    assert [u["target"] for u in updates] == ["prompt:support-answer@1"] * 3
    details = updates[0]["details"]
    assert details["version"] == 1 and details["content_hash"] == first["content_hash"]
    assert details["message"] == "reworded" and details["diff_truncated"] is False
    assert "+# Owner: the support team\n" in details["diff"]
    assert details["from"]["sha256"] != details["to"]["sha256"] and details["to"]["format"] == "yaml"
    # The same text again is unchanged; the same content as Markdown updates the text and its format.
    assert push(store, project, ("support-answer.yaml", edits[-1]))[0]["status"] == "unchanged"
    markdown = (
        "---\nname: support-answer\nmodel: smollm2-135m\ntemperature: 0\nmax_tokens: 64\n"
        "variables:\n  question: {type: string}\n---\n\n## system\n"
        "You answer customer questions in one short sentence.\n\n## user\n{{ question }}\n"
    )
    [as_md] = push(store, project, ("support-answer.md", markdown))
    assert (as_md["status"], as_md["version"]) == ("source_updated", 1)
    with store.connect() as conn:
        row = repo.get_version(conn, version.prompt_id, 1)
    assert row is not None and (row.source_text, row.source_format) == (markdown, "md")


def test_references_resolve(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    with store.connect() as conn:
        v2 = get_version(conn, project, parse_ref("support-answer@2"))
        assert v2.version == 2 and v2.name == "support-answer" and "variant 2" in str(v2.template)
        assert get_version(conn, project, parse_ref("support-answer")).version == 1
        assert get_version(conn, project, parse_ref("support-answer@latest")).version == 2
        assert get_version(conn, project, parse_ref(f"support-answer@sha:{v2.content_hash[:6]}")) == v2
        assert get_version(conn, project, PromptRef("support-answer", sha=v2.content_hash)) == v2
        with pytest.raises(NotFound, match="has no version 9 \\(its newest is 2\\)"):
            get_version(conn, project, parse_ref("support-answer@9"))
        with pytest.raises(NotFound, match="has no label 'staging' \\(its labels: latest, production\\)"):
            get_version(conn, project, parse_ref("support-answer@staging"))
        with pytest.raises(NotFound, match="no prompt named 'nope'"):
            get_version(conn, project, parse_ref("nope"))
        with pytest.raises(NotFound, match="no version whose content hash starts with"):
            get_version(conn, project, parse_ref("support-answer@sha:" + "0" * 40))


def test_ambiguous_sha_prefix_is_a_conflict(store: Store, project: str) -> None:
    # Hashes sharing their first 6 digits are rare: store a second one with v1's prefix directly.
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    with store.begin() as conn:
        prompt = require_prompt(conn, project, "support-answer")
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
        get_version(conn, project, parse_ref(f"support-answer@sha:{v1.content_hash[:6]}"))
    assert caught.value.status == 409


def test_labels_move_instantly_and_are_audited(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    seen: list[tuple[str, str]] = []

    def listener(project_id: str, name: str) -> None:
        seen.append((project_id, name))

    add_label_listener(listener)
    try:
        with store.begin() as conn:
            label = set_label(
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
            set_label(
                conn,
                project_id=project,
                prompt_name="support-answer",
                label="staging",
                splits=[{"version": 1, "weight": 100}],
                actor="key_dev",
                role="developer",
            )
    finally:
        remove_label_listener(listener)
    assert seen == [(project, "support-answer")] * 2
    with store.connect() as conn:
        assert get_version(conn, project, parse_ref("support-answer")).version == 2
        assert get_version(conn, project, parse_ref("support-answer@staging")).version == 1
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
        set_label(
            conn, project_id=project, prompt_name="support-answer", label=label, splits=splits, actor="k", role="admin"
        )


def test_protected_labels_need_an_admin(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    move = {"project_id": project, "prompt_name": "support-answer", "label": "production", "actor": "k"}
    with store.begin() as conn, pytest.raises(Forbidden, match="admin key"):
        protect_label(conn, **move, protected=True, role="developer")
    with store.begin() as conn:
        assert protect_label(conn, **move, protected=True, role="admin").protected
    with store.begin() as conn, pytest.raises(Forbidden, match="'production' of prompt 'support-answer' is protected"):
        set_label(conn, **move, splits=[{"version": 2, "weight": 100}], role="developer")
    # The hint names what works for this key: not `prompt promote` (refused too), but an admin running it,
    # or an unprotected label.
    with store.begin() as conn, pytest.raises(Forbidden) as refused:
        set_label(conn, **move, splits=[{"version": 2, "weight": 100}], role="developer")
    hint = refused.value.message
    assert "Ask an admin to run `pilothouse prompt promote support-answer 2 --to production`" in hint
    assert "with this key you can point an unprotected label such as 'staging' at it" in hint
    assert "`pilothouse prompt label support-answer 2 staging`" in hint
    with store.begin() as conn:
        moved = set_label(conn, **move, splits=[{"version": 2, "weight": 100}], role="admin")
        assert moved.protected and moved.splits == [{"version": 2, "weight": 100}]
    with store.begin() as conn:
        assert not protect_label(conn, **move, protected=False, role="admin").protected
    with store.begin() as conn:
        set_label(conn, **move, splits=[{"version": 1, "weight": 100}], role="developer")
    with store.begin() as conn, pytest.raises(InvalidRequest, match="cannot be protected"):
        protect_label(conn, **{**move, "label": "latest"}, protected=True, role="admin")
    with store.begin() as conn, pytest.raises(NotFound, match="no label 'qa'"):
        protect_label(conn, **{**move, "label": "qa"}, protected=True, role="admin")
    with store.connect() as conn:
        actions = [e.action for e in list_events(conn, project_id=project, limit=1000)]
        assert actions.count("prompt.label.protect") == 1 and actions.count("prompt.label.unprotect") == 1


def test_canary_splits_resolve_per_sticky_key(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    push(store, project, ("support-answer.yaml", variant(2)))
    with store.begin() as conn:
        set_label(
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
        chosen = {resolve_for_call(conn, project, ref, f"user-{i}").version for i in range(40)}
        assert chosen == {1, 2}
        assert resolve_for_call(conn, project, ref, "alice") == resolve_for_call(conn, project, ref, "alice")
        assert get_version(conn, project, ref).version == 1  # the baseline: a tie goes to the lower
        assert resolve_for_call(conn, project, parse_ref("support-answer@2"), "x").version == 2


def test_rollback_rule(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    rule = {"metric": "error_rate", "min_samples": 20, "alpha": 0.05}
    with store.begin() as conn:
        label = set_rollback_rule(
            conn, project_id=project, prompt_name="support-answer", label="production", rule=rule, actor="k"
        )
    assert label.rollback_rule == rule
    with store.begin() as conn, pytest.raises(InvalidRequest, match="alpha"):
        set_rollback_rule(
            conn,
            project_id=project,
            prompt_name="support-answer",
            label="production",
            rule={"metric": "error_rate", "alpha": 2},
            actor="k",
        )
    with store.begin() as conn:
        set_rollback_rule(
            conn, project_id=project, prompt_name="support-answer", label="production", rule=None, actor="k"
        )
        label2 = get_label(conn, project, "support-answer", "production")
    assert label2 is not None and label2.rollback_rule is None


def test_test_suites_are_stored_as_pushed(store: Store, project: str) -> None:
    tests = "cases:\n  - name: parcel\n    variables: {question: 'Where?'}\n"
    results = push(store, project, ("support-answer.yaml", SUPPORT), ("support-answer.tests.yaml", tests))
    assert [(r["kind"], r["status"]) for r in results] == [("prompt", "created"), ("tests", "created")]
    assert push(store, project, ("support-answer.tests.yaml", tests))[0]["status"] == "unchanged"
    with store.connect() as conn:
        assert get_test_suite(conn, project, "support-answer") == [
            {"name": "parcel", "variables": {"question": "Where?"}}
        ]
        row = get_test_suite_row(conn, project, "support-answer")
        assert row is not None and row.source_text == tests
    updated = push(store, project, ("support-answer.tests.yaml", "- {name: other}\n"))
    assert updated[0]["status"] == "updated"
    with store.connect() as conn:
        assert get_test_suite(conn, project, "support-answer") == [{"name": "other"}]


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
        result = push_definition(conn, project_id=project, definition=plain, actor="k", author="ci")
    assert result.created and result.version.author == "ci"
    with store.connect() as conn:
        row = repo.get_version(conn, result.version.prompt_id, 1)
    assert row is not None and row.source_text is None and row.source_format is None
    # Pushing the same content as a file afterwards makes no version (the hash covers content, not its form)
    # but keeps the file's text, so pull returns it.
    [pushed] = push(store, project, ("support-answer.yaml", SUPPORT))
    assert (pushed["status"], pushed["version"]) == ("source_updated", 1)
    with store.connect() as conn:
        row = repo.get_version(conn, result.version.prompt_id, 1)
    assert row is not None and (row.source_text, row.source_format) == (SUPPORT, "yaml")
    assert push(store, project, ("support-answer.yaml", SUPPORT))[0]["status"] == "unchanged"


def test_projects_are_separate(store: Store, project: str) -> None:
    push(store, project, ("support-answer.yaml", SUPPORT))
    with store.begin() as conn:
        other = create_project(conn, "other").id
    with store.connect() as conn, pytest.raises(NotFound):
        get_version(conn, other, parse_ref("support-answer"))
    assert push(store, other, ("support-answer.yaml", SUPPORT))[0]["version"] == 1
