"""What the response cache keeps of a project's content, by its content capture mode (gateway/cache/privacy.py),
through the whole server in process, on the SQLite and Redis backends: with capture `off` neither the question
nor the answer is in the cache file, the Redis keys and values or the process's semantic index, and the same
question is still answered from the cache; with `full` nothing changed (the question is kept, paraphrases hit);
with `redacted` a question with personal data is kept out and a clean one is not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from pilothouse.config import Deployment, ModelEntry
from pilothouse.gateway.cache.privacy import SEALED, is_sealed, seal, unseal
from pilothouse.server.app import PilothouseApp
from tests.conftest import REDIS_URL
from tests.support.asgi_app import app_settings, running

QUESTION = "What is the boiling point of zirconium tetrachloride at sea level?"
PARAPHRASE = "At sea level, what is the boiling point of zirconium tetrachloride?"
ANSWER = "Zirconium tetrachloride sublimes near 331 degrees Celsius instead of boiling."
MARKS = (b"zirconium", b"Zirconium", b"sublimes")
"""Words of the question and the answer: none of them may be in the stored bytes when capture is off."""


def models() -> list[ModelEntry]:
    deployment = Deployment(provider="fake", model="chem", options={"reply": ANSWER})
    return [ModelEntry(name="chem", deployments=[deployment])]


@pytest.fixture(params=["sqlite", "redis"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, PilothouseApp, str]]:
    backend: str = request.param
    prefix = f"ph-test-{uuid.uuid4().hex[:12]}:"
    cache: dict[str, Any] = {"enabled": True, "backend": backend, "semantic": {"enabled": True}}
    extra: dict[str, Any] = {}
    if backend == "redis":
        cache["redis_prefix"] = prefix
        extra["redis_url"] = REDIS_URL
    with running(app_settings(tmp_path, models(), cache=cache, **extra), monkeypatch) as (client, app):
        yield client, app, prefix
    if backend == "redis":
        redis = Redis.from_url(REDIS_URL)
        keys = list(redis.scan_iter(match=prefix + "*"))
        if keys:
            redis.delete(*keys)
        redis.close()


def ask(client: TestClient, text: str) -> tuple[str, str | None, str]:
    body = {"model": "chem", "messages": [{"role": "user", "content": text}], "temperature": 0}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return response.headers["x-pilothouse-cache"], response.headers.get("x-pilothouse-cache-kind"), content


def set_capture(client: TestClient, mode: str) -> None:
    response = client.put("/api/projects/capture", json={"mode": mode})
    assert response.status_code == 200, response.text


def stored_bytes(app: PilothouseApp, prefix: str) -> bytes:
    """Everything the cache backend holds: the SQLite file and its write-ahead log, or every Redis key under
    the test's prefix with its value (entries and the semantic index's streams)."""
    settings = app.settings
    if settings.cache.backend == "sqlite":
        files = [settings.data_dir / name for name in ("cache.db", "cache.db-wal")]
        return b"".join(path.read_bytes() for path in files if path.exists())
    redis: Any = Redis.from_url(REDIS_URL)  # the sync client's return types are loose unions
    parts: list[bytes] = []
    for key in redis.scan_iter(match=prefix + "*"):
        parts.append(key)
        kind = redis.type(key)
        if kind == b"string":
            parts.append(redis.get(key) or b"")
        elif kind == b"stream":
            for _, fields in redis.xrange(key):
                parts.extend(k + v for k, v in fields.items())
    redis.close()
    return b"".join(parts)


def mirror_size(app: PilothouseApp) -> int:
    """Vectors in this process's copy of the semantic index."""
    cache = app.api.state.pilothouse.cache
    assert cache is not None
    return len(cache.store.mirror.index)


def test_capture_off_keeps_no_question_and_no_readable_answer(server: tuple[TestClient, PilothouseApp, str]) -> None:
    client, app, prefix = server
    set_capture(client, "off")
    assert ask(client, QUESTION) == ("miss", None, ANSWER)
    assert ask(client, QUESTION) == ("hit", "exact", ANSWER)  # the same question still opens its entry
    assert ask(client, PARAPHRASE)[:2] == ("miss", None)  # no question kept to compare a paraphrase with
    raw = stored_bytes(app, prefix)
    assert SEALED in raw  # the entries are there, sealed
    assert not [mark for mark in MARKS if mark in raw]
    assert mirror_size(app) == 0


def test_capture_full_keeps_the_question_and_serves_paraphrases(server: tuple[TestClient, PilothouseApp, str]) -> None:
    client, app, prefix = server
    assert ask(client, QUESTION) == ("miss", None, ANSWER)
    assert ask(client, PARAPHRASE) == ("hit", "semantic", ANSWER)
    raw = stored_bytes(app, prefix)
    assert QUESTION.encode() in raw and ANSWER.encode() in raw and SEALED not in raw  # the check above can see
    assert mirror_size(app) == 1


def test_capture_redacted_keeps_a_question_only_without_personal_data(
    server: tuple[TestClient, PilothouseApp, str],
) -> None:
    client, app, prefix = server
    set_capture(client, "redacted")
    personal = "Is zirconium tetrachloride safe to ship to ann.lee@example.org in Boston?"
    assert ask(client, personal)[0] == "miss"
    assert ask(client, personal)[:2] == ("hit", "exact")
    raw = stored_bytes(app, prefix)
    assert b"ann.lee@example.org" not in raw and b"sublimes" not in raw and mirror_size(app) == 0
    assert ask(client, QUESTION)[0] == "miss"  # clean: kept as with `full`
    assert ask(client, PARAPHRASE)[:2] == ("hit", "semantic")
    assert QUESTION.encode() in stored_bytes(app, prefix) and mirror_size(app) == 1


def test_a_sealed_entry_opens_only_with_its_own_key() -> None:
    key, other = bytes(range(32)), bytes(32)
    sealed = seal(b'{"answer": "x"}', key)
    assert is_sealed(sealed) and b"answer" not in sealed
    assert unseal(sealed, key) == b'{"answer": "x"}'
    assert unseal(sealed, other) is None and unseal(SEALED + b"short", key) is None
