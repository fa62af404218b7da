"""An expensive prompt template neither stalls the server nor answers 500: through the gateway, the render
preview and the cost estimate it is refused with a 422 naming the bound, and while the gateway refuses it
(rendering in a worker thread, off the event loop) `/healthz` keeps answering. In-process application with
its real event loop (Starlette's TestClient runs it in a thread of its own), on SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.prompts.registry.sandbox import RENDER_TIMEOUT_S
from pilothouse.store.engine import Store, open_store
from tests.prompts.inprocess import FAKE_MODEL, App, running_app

NESTED = "{% for i in range(15000) %}{% for j in range(15000) %}{% endfor %}{% endfor %}"


def prompt_file(name: str, content: str) -> str:
    return f"name: {name}\nmodel: {FAKE_MODEL}\nmax_tokens: 4\nmessages:\n  - role: user\n    content: '{content}'\n"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    store: Store = open_store(f"sqlite:///{tmp_path / 'test.db'}")
    with running_app(store, tmp_path / "data", monkeypatch) as running:
        files = [
            {"path": "slow.yaml", "content": prompt_file("slow", NESTED)},
            {"path": "huge.yaml", "content": prompt_file("huge", '{{ "x" * 10**9 }}')},
            {"path": "fine.yaml", "content": prompt_file("fine", "Hello {{ 1 + 1 }}")},
        ]
        running.ok("POST", "/api/prompts/push", json={"files": files})
        yield running
    store.dispose()


def chat(app: App, model: str) -> Any:
    return app.call("POST", "/v1/chat/completions", json={"model": model})


def test_expensive_templates_are_a_422_naming_the_bound(app: App) -> None:
    for name, code in (("slow", "template_too_expensive"), ("huge", "template_output_too_large")):
        started = time.monotonic()
        response = chat(app, f"prompt:{name}@production")
        assert time.monotonic() - started < RENDER_TIMEOUT_S + 2
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["param"] == "model"
        assert error["message"].startswith(f"prompt {name}@1 could not be rendered: messages[0].content: ")
        preview = app.call("POST", f"/api/prompts/{name}/render", json={})
        assert preview.status_code == 422 and preview.json()["error"]["code"] == code
        estimate = app.call("POST", "/api/costs/estimate", json={"prompt": name})
        assert estimate.status_code == 422 and estimate.json()["error"]["code"] == code
    fine = chat(app, "prompt:fine@production")
    assert fine.status_code == 200, fine.text


def test_healthz_answers_while_a_render_is_refused(app: App) -> None:
    results: list[Any] = []

    def expensive_calls() -> None:
        for _ in range(2):
            results.append(chat(app, "prompt:slow@production"))

    worker = threading.Thread(target=expensive_calls)
    worker.start()
    time.sleep(0.2)  # let the first render start
    latencies = []
    while worker.is_alive():
        started = time.monotonic()
        assert app.http.get("/healthz").status_code == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.05)
    worker.join()
    assert [r.status_code for r in results] == [422, 422]
    assert len(latencies) >= 5, latencies  # the loop was polled through the renders
    assert max(latencies) < 0.5, latencies
