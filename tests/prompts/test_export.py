"""Pull's export (`registry/export.py`) and the trace reads of the stats and canaries (`store/prompt_traces.py`,
`store/canaries.py`), in process on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
import yaml
from sqlalchemy import insert

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.prompts.registry.export import export_prompts, parse_names
from pilothouse.prompts.registry.files import definition, parse_prompt_file
from pilothouse.prompts.registry.labels import set_label, set_rollback_rule
from pilothouse.prompts.registry.push import push_definition, push_files
from pilothouse.prompts.registry.refs import PromptRef
from pilothouse.store.canaries import target_events, watched_labels
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.prompt_traces import TraceWindow, failed_span_attributes, numeric_scores, prompt_traces
from pilothouse.store.scores import add_score
from pilothouse.store.tables import spans, traces
from tests.prompts.test_monitor import PROMPT, add_traces, prompt_file, setup_prompt

TESTS = "# checked on every push\n- name: short\n  variables: {question: hi}\n"


def _push(store: Store, project_id: str, files: list[tuple[str, str]]) -> None:
    with store.begin() as conn:
        push_files(conn, project_id=project_id, files=files, actor="k")


def test_export_follows_the_label_latest_and_the_names_filter(store: Store) -> None:
    project_id = setup_prompt(store)  # v1 is production, v2 the newest
    _push(store, project_id, [("other.yaml", prompt_file("Other.").replace(PROMPT, "other"))])
    _push(store, project_id, [(f"{PROMPT}.yaml", prompt_file("Answer at length.")), (f"{PROMPT}.tests.yaml", TESTS)])
    with store.connect() as conn:
        production = export_prompts(conn, project_id)
        latest = export_prompts(conn, project_id, latest=True, names=[PROMPT])
        pinned = export_prompts(conn, project_id, names=[f"{PROMPT}@2", "other"])
        staging = export_prompts(conn, project_id, label="staging")
    by_name = {(f["name"], f["kind"]): f for f in production.files}
    assert by_name[(PROMPT, "prompt")]["version"] == 1
    assert by_name[(PROMPT, "prompt")]["content"] == prompt_file("Answer briefly.")  # the text as pushed
    assert by_name[(PROMPT, "tests")] == {
        "kind": "tests",
        "name": PROMPT,
        "path": f"{PROMPT}.tests.yaml",
        "content": TESTS,
    }
    assert [f["kind"] for f in production.files if f["name"] == PROMPT] == ["prompt", "tests"]
    assert production.skipped == []
    assert [(f["name"], f.get("version")) for f in latest.files] == [(PROMPT, 2), (PROMPT, None)]
    assert {(f["name"], f.get("version")) for f in pinned.files if f["kind"] == "prompt"} == {(PROMPT, 2), ("other", 1)}
    assert staging.files == [] and sorted(staging.skipped) == ["other", PROMPT]
    assert staging.to_dict() == {"files": [], "skipped": staging.skipped}


def test_a_version_pushed_as_json_is_exported_as_canonical_yaml(store: Store) -> None:
    with store.begin() as conn:
        project_id = create_project(conn, "json").id
        data = yaml.safe_load(prompt_file("From the API."))
        push_definition(conn, project_id=project_id, definition=definition(data), actor="k")
    with store.connect() as conn:
        (exported,) = export_prompts(conn, project_id).files
    assert exported["path"] == f"{PROMPT}.yaml"
    reparsed = parse_prompt_file(exported["path"], exported["content"])
    assert reparsed.content_hash == definition(data).content_hash


def test_export_refusals(store: Store) -> None:
    project_id = setup_prompt(store)
    with store.connect() as conn:
        with pytest.raises(InvalidRequest) as no_target:
            export_prompts(conn, project_id, label=None, latest=False)
        assert no_target.value.param == "label"
        with pytest.raises(NotFound) as missing:
            export_prompts(conn, project_id, names=["nope", PROMPT, "zzz"])
        assert missing.value.code == "prompt_not_found" and "'nope', 'zzz'" in missing.value.message
        with pytest.raises(NotFound) as no_version:
            export_prompts(conn, project_id, names=[f"{PROMPT}@9"])
        assert no_version.value.code == "prompt_version_not_found"
    with pytest.raises(InvalidRequest) as bad:
        parse_names(["ok", "Not A Name"])
    assert bad.value.param == "names" and bad.value.message.startswith("names[1]:")
    assert parse_names(None) is None
    assert parse_names([PROMPT, "other@staging"]) == {PROMPT: None, "other": PromptRef("other", label="staging")}


def test_a_trace_window_covers_its_prompt_versions_and_time_range(store: Store) -> None:
    project_id = setup_prompt(store)
    now = time.time()
    with store.begin() as conn:
        old = add_traces(conn, project_id, 1, 2, start=now - 3600)
        v1 = add_traces(conn, project_id, 1, 3, start=now - 60)
        v2 = add_traces(conn, project_id, 2, 2, start=now - 60, status="error")
        add_traces(conn, project_id, 1, 2, start=now - 60, prompt_name="another-prompt")
        unversioned = add_traces(conn, project_id, 1, 1, start=now - 60)
        conn.execute(traces.update().where(traces.c.id.in_(unversioned)).values(prompt_version=None))
        add_score(conn, project_id=project_id, trace_id=v1[0], name="helpful", value=1.0, author="k")
        add_score(conn, project_id=project_id, trace_id=v1[0], name="tone", value=0.5, author="k")
        add_score(conn, project_id=project_id, trace_id=v1[1], name="label", string_value="spam", author="k")
        add_score(conn, project_id=project_id, trace_id=old[0], name="helpful", value=0.0, author="k")
        conn.execute(
            insert(spans),
            [
                {
                    "id": f"span{i:012d}",
                    "trace_id": trace_id,
                    "project_id": project_id,
                    "kind": "llm",
                    "name": "chat",
                    "status": "error",
                    "started_at": now - 60,
                    "attributes": {"http.response.status_code": 422} if i == 0 else None,
                }
                for i, trace_id in enumerate(v2)
            ],
        )
    window = TraceWindow(project_id, PROMPT, since=now - 120)
    with store.connect() as conn:
        rows = list(prompt_traces(conn, window))
        only_v1 = {r.id for r in prompt_traces(conn, TraceWindow(project_id, PROMPT, now - 120, versions=(1,)))}
        until = {r.id for r in prompt_traces(conn, TraceWindow(project_id, PROMPT, now - 7200, until=now - 120))}
        scored = sorted((s.trace_id, s.name, s.value) for s in numeric_scores(conn, window))
        helpful = [s.name for s in numeric_scores(conn, window, "helpful")]
        failed = dict(failed_span_attributes(conn, window))
    assert {r.id for r in rows} == {*v1, *v2}
    assert {r.version for r in rows} == {1, 2} and all(r.cost_usd > 0 for r in rows)
    assert only_v1 == set(v1) and until == set(old)
    assert scored == sorted([(v1[0], "helpful", 1.0), (v1[0], "tone", 0.5)])  # string scores are left out
    assert helpful == ["helpful"]
    assert failed == {v2[0]: {"http.response.status_code": 422}, v2[1]: {}}


def test_watched_labels_and_a_canary_s_audit_events(store: Store) -> None:
    project_id = setup_prompt(store)
    with store.begin() as conn:
        for label, rule in (("production", {"metric": "error_rate"}), ("staging", None)):
            set_label(
                conn,
                project_id=project_id,
                prompt_name=PROMPT,
                label=label,
                splits=[{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
                actor="k",
                role="developer",
                action="prompt.canary.start",
            )
            set_rollback_rule(conn, project_id=project_id, prompt_name=PROMPT, label=label, rule=rule, actor="k")
    with store.connect() as conn:
        watched = watched_labels(conn)
        events = target_events(
            conn,
            project_id,
            f"prompt:{PROMPT}@production",
            actions=("prompt.label.rollback_rule",),
            since=0.0,
            start_action="prompt.canary.start",
            start_since=time.time() + 60,  # after the start: left out
        )
    assert [(w.project_id, w.prompt_name, w.label) for w in watched] == [(project_id, PROMPT, "production")]
    assert [e["action"] for e in events] == ["prompt.label.rollback_rule"]
    assert events[0]["details"]["to"] == {"metric": "error_rate"}
