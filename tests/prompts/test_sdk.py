"""The SDK: `pilothouse.prompts.get` and the client's prompt methods against a real server (a subprocess with
the fake model), its in-process cache, and the last-known-good fallback when the server is gone."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pilothouse import Pilothouse, PilothouseError, prompts
from pilothouse.prompts import Prompt, VariableError
from tests.support.servers import RunningServer, start_server

pytestmark = [pytest.mark.slow]

SUPPORT = """\
name: support-answer
model: fake-chat
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


@pytest.fixture
def light_server(tmp_path: Path) -> Iterator[RunningServer]:
    """`pilothouse up` with only the fake model (no local model to load: it starts in seconds)."""
    config = tmp_path / "pilothouse.toml"
    config.write_text(
        'include_default_models = false\n[[models]]\nname = "fake-chat"\n'
        '[[models.deployments]]\nprovider = "fake"\nmodel = "fake-1"\n'
    )
    server = start_server(tmp_path / "data", config=config)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    cache = tmp_path / "prompt-cache"
    monkeypatch.setenv("PILOTHOUSE_PROMPT_CACHE", str(cache))
    prompts.clear_cache()
    yield cache
    prompts.clear_cache()


def test_get_render_cache_and_fallback(
    light_server: RunningServer, fresh_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, key = light_server.url, light_server.admin_key
    with Pilothouse(url, key) as ph:
        results = ph.push_prompts([{"path": "support-answer.yaml", "content": SUPPORT}], message="v1")
        assert [r["status"] for r in results] == ["created"]
        ph.push_prompts([{"path": "support-answer.yaml", "content": SUPPORT.replace("short", "brief")}])

    prompt = prompts.get("support-answer", url=url, api_key=key)
    assert isinstance(prompt, Prompt)
    assert (prompt.name, prompt.version, prompt.label, prompt.source) == ("support-answer", 1, "production", "server")
    assert prompt.model == "fake-chat" and prompt.config["max_tokens"] == 64
    assert prompt.variables == {"question": {"type": "string", "required": True}}
    assert prompt.render(question="Where?") == [
        {"role": "system", "content": "You answer customer questions in one short sentence."},
        {"role": "user", "content": "Where?"},
    ]
    assert prompt.completion_kwargs(question="Hi")["model"] == "fake-chat"
    with pytest.raises(VariableError, match="must be a string, got integer") as caught:
        prompt.render(question=1)
    assert caught.value.name == "question"

    latest = prompts.get("support-answer", version=2, url=url, api_key=key, variables={"question": "Q"})
    assert latest.version == 2 and latest.messages is not None and latest.messages[1]["content"] == "Q"
    assert prompts.get("support-answer@latest", url=url, api_key=key).version == 2
    assert prompts.get("support-answer", url=url, api_key=key).source == "cache"
    with pytest.raises(PilothouseError) as missing:
        prompts.get("nope", url=url, api_key=key)
    assert missing.value.status == 404
    with pytest.raises(ValueError, match="not both"):
        prompts.get("support-answer", label="production", version=1)

    light_server.stop()
    prompts.clear_cache()
    with caplog.at_level(logging.WARNING, logger="pilothouse.prompts"):
        fallback = prompts.get("support-answer", url=url, api_key=key)
    assert fallback.source == "fallback" and fallback.version == 1
    assert fallback.render(question="x")[1]["content"] == "x"
    assert "last-known-good version 1" in caplog.text
    assert list(fresh_cache.rglob("support-answer@production.json"))
    with pytest.raises(PilothouseError) as unreachable:
        prompts.get("never-fetched", url=url, api_key=key)
    assert unreachable.value.status == 0


def test_client_prompt_methods(light_server: RunningServer, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "support-answer.yaml").write_text(SUPPORT)
    with Pilothouse(light_server.url, light_server.admin_key) as ph:
        assert [r["status"] for r in ph.push_prompts(folder)] == ["created"]
        assert [r["status"] for r in ph.push_prompts(folder)] == ["unchanged"]
        ph.create_prompt_version(
            "support-answer", {"name": "support-answer", **_definition(SUPPORT, "brief")}, message="via API"
        )
        listing = ph.list_prompts()
        assert [(p["name"], p["latest_version"]) for p in listing] == [("support-answer", 2)]
        assert ph.get_prompt("support-answer")["versions"][1]["message"] == "via API"
        assert ph.get_prompt_version("support-answer", "2")["source_text"] is None
        diff = ph.diff_prompt("support-answer", "1", "latest")
        assert diff["from_version"] == 1 and diff["to_version"] == 2 and not diff["identical"]
        label = ph.set_label(
            "support-answer", "production", splits=[{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
        )
        assert label["version"] == 1 and len(label["splits"]) == 2
        users = {ph.get_prompt_version("support-answer", "production", user=f"u{i}")["version"] for i in range(40)}
        assert users == {1, 2}
        assert ph.protect_label("support-answer", "production")["protected"] is True
        assert ph.protect_label("support-answer", "production", False)["protected"] is False
        rendered = ph.render_prompt("support-answer", "2", {"question": "Q"})
        assert rendered["messages"][0]["content"].endswith("brief sentence.")
        files = {f["path"]: f["content"] for f in ph.pull_prompts(latest=True)["files"]}
        assert "name: support-answer" in files["support-answer.yaml"]
        assert ph.pull_prompts()["files"]
        assert ph.pull_prompts(label="nope") == {"files": [], "skipped": ["support-answer"]}


def _definition(text: str, word: str) -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load(text.replace("short", word))
    data.pop("name")
    return data
