"""Bounds on what a prompt push stores: YAML aliases that expand a small file into a huge template ("billion
laughs") are refused, and prompt and test files, and the templates they define, are capped at MAX_PROMPT_SIZE
characters with a clear 422; parsing errors never become a 500."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.errors import InvalidRequest, Unprocessable
from pilothouse.prompts.registry.files import (
    MAX_PROMPT_SIZE,
    PromptDefinition,
    PromptFileError,
    PromptTooLarge,
    parse_prompt_file,
    parse_test_file,
)
from pilothouse.prompts.registry.push import push_definition, push_files
from pilothouse.prompts.testing.scenarios import ScenarioFileError, parse_cases_text
from pilothouse.store import prompts as repo
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from tests.prompts.inprocess import FAKE_MODEL, App, running_app

LEVELS = "abcdefgh"


def billion_laughs() -> str:
    """A prompt file of under 1 KB whose variable defaults nest 7 levels of aliases (9^8 strings once written out)."""
    lines = [
        f"name: laughs\nmodel: {FAKE_MODEL}\nvariables:\n",
        "  a: {type: array, default: &a [" + ",".join(["lol"] * 9) + "]}\n",
    ]
    for previous, level in itertools.pairwise(LEVELS):
        lines.append(f"  {level}: {{type: array, default: &{level} [" + ",".join([f"*{previous}"] * 9) + "]}\n")
    lines.append("messages:\n  - role: user\n    content: hi\n")
    return "".join(lines)


SMALL = f"name: small\nmodel: {FAKE_MODEL}\nmessages:\n  - role: user\n    content: hi\n"


def test_billion_laughs_is_refused_with_its_line() -> None:
    text = billion_laughs()
    assert len(text) < 1024
    with pytest.raises(PromptFileError) as caught:
        parse_prompt_file("laughs.yaml", text)
    assert "expands to more than" in caught.value.message and "aliases" in caught.value.message
    assert caught.value.line is not None and 4 <= caught.value.line <= 10


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: x\nmessages: &m [*m]\n", "refers to the node it is part of"),
        ("name: x\nmessages: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ("name: x\ndescription: *nowhere\n", "undefined alias"),
    ],
)
def test_other_hostile_yaml_is_an_invalid_file(text: str, words: str) -> None:
    with pytest.raises(PromptFileError, match=words):
        parse_prompt_file("x.yaml", text)


def test_modest_aliases_still_work() -> None:
    text = (
        f"name: reuse\nmodel: {FAKE_MODEL}\nvariables:\n  tone: {{type: string, enum: &tones [calm, warm]}}\n"
        "  other: {type: string, enum: *tones, required: false}\n"
        "messages:\n  - role: user\n    content: '{{ tone }}{{ other }}'\n"
    )
    parsed = parse_prompt_file("reuse.yaml", text)
    assert parsed.template["variables"]["other"]["enum"] == ["calm", "warm"]


def test_oversized_files_and_templates() -> None:
    long_text = "x" * MAX_PROMPT_SIZE
    with pytest.raises(PromptTooLarge, match=f"at most {MAX_PROMPT_SIZE:,}"):
        parse_prompt_file("big.yaml", f"name: big\nmessages:\n  - role: user\n    content: {long_text}\n")
    with pytest.raises(PromptTooLarge, match="the file is too large"):
        parse_prompt_file("big.md", f"---\nname: big\n---\n{long_text}\n")
    with pytest.raises(PromptTooLarge):
        parse_test_file("big.tests.yaml", f"- variables: {{q: {long_text}}}\n")
    # a test file within the bound whose aliases would make its cases larger than the bound
    third = "y" * (MAX_PROMPT_SIZE // 3)
    text = f"- variables: {{q: &q {third}}}\n" + "- variables: {q: *q}\n" * 3
    with pytest.raises(PromptFileError, match="expands to more than"):
        parse_test_file("aliases.tests.yaml", text)


def test_scenario_files_read_locally_refuse_alias_bombs() -> None:
    cases = billion_laughs().replace("name: laughs", "cases:").split("messages:")[0]
    with pytest.raises(ScenarioFileError, match="expands to more than"):
        parse_cases_text(cases, source="laughs.tests.yaml")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'test.db'}")
    yield store
    store.dispose()


def test_the_registry_refuses_and_stores_nothing(sqlite_store: Store) -> None:
    with sqlite_store.begin() as conn:
        project = create_project(conn, "p").id
    with pytest.raises(InvalidRequest, match="expands to more than") as caught, sqlite_store.begin() as conn:
        push_files(conn, project_id=project, files=[("laughs.yaml", billion_laughs())], actor="k")
    assert caught.value.code == "invalid_prompt"
    big = f"name: big\nmessages:\n  - role: user\n    content: {'x' * MAX_PROMPT_SIZE}\n"
    files = [("small.yaml", SMALL), ("big.yaml", big)]
    with (
        pytest.raises(Unprocessable, match=r"big\.yaml: the file is too large") as too_large,
        sqlite_store.begin() as conn,
    ):
        push_files(conn, project_id=project, files=files, actor="k")
    assert too_large.value.code == "prompt_too_large" and too_large.value.status == 422
    # a definition built some other way is checked when pushed, too
    template: dict[str, Any] = {"type": "text", "text": "z" * (MAX_PROMPT_SIZE + 1), "variables": {}, "config": {}}
    oversized = PromptDefinition("direct", template, "0" * 64)
    with pytest.raises(Unprocessable, match="prompt 'direct' is") as direct, sqlite_store.begin() as conn:
        push_definition(conn, project_id=project, definition=oversized, actor="k")
    assert direct.value.code == "prompt_too_large"
    with sqlite_store.connect() as conn:
        assert repo.list_prompts(conn, project) == []


def test_the_api_answers_4xx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_store: Store) -> None:
    with running_app(sqlite_store, tmp_path / "data", monkeypatch) as app:
        pushed = push(app, [{"path": "laughs.yaml", "content": billion_laughs()}])
        assert pushed.status_code == 400 and pushed.json()["error"]["code"] == "invalid_prompt"
        assert "expands to more than" in pushed.json()["error"]["message"]
        long_file = {"path": "big.yaml", "content": "x" * (MAX_PROMPT_SIZE + 1)}
        pushed = push(app, [long_file])
        assert pushed.status_code == 422 and pushed.json()["error"]["param"] == "files.0.content"
        definition = {"messages": [{"role": "user", "content": "x" * MAX_PROMPT_SIZE}]}
        created = app.call("POST", "/api/prompts/big/versions", json={"definition": definition})
        assert created.status_code == 422, created.text
        assert created.json()["error"]["code"] == "prompt_too_large"
        assert app.ok("GET", "/api/prompts")["data"] == []
        assert push(app, [{"path": "small.yaml", "content": SMALL}]).status_code == 200


def push(app: App, files: list[dict[str, str]]) -> Any:
    return app.call("POST", "/api/prompts/push", json={"files": files})
