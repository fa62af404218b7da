"""`pilothouse up`'s first start: the bootstrap key is an owner key; the banner shows its secret only when the
server generated it (never one the operator set in PILOTHOUSE_ADMIN_KEY) and always says where it was saved;
the data directory is 0700 and every file the server writes in it 0600.

`up` runs as a user runs it (typer's runner), with its uvicorn `serve` replaced by a client that runs the
application's lifespan in this process, so the banner is the real one, printed on start."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

import pilothouse.cli.up as up_module
from pilothouse.cli.main import app as cli
from pilothouse.cli.up import key_banner
from pilothouse.server.bootstrap import Bootstrap
from pilothouse.store.engine import open_store
from pilothouse.store.keys import find_by_secret

CONFIG = """\
include_default_models = false
canary_check_interval_s = 0

[local]
preload = false

[[models]]
name = "fake-chat"
deployments = [{provider = "fake", model = "fake"}]
"""
OPERATOR_KEY = "ph-set-by-the-operator-0123456789"


@pytest.fixture
def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`start()` runs `pilothouse up` until it is ready, makes one gateway call, stops; returns its output."""
    config = tmp_path / "pilothouse.toml"
    config.write_text(CONFIG)
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")  # `up` sets it for the process
    for name in ("PILOTHOUSE_DATA_DIR", "PILOTHOUSE_DATABASE_URL", "PILOTHOUSE_CONFIG", "PILOTHOUSE_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)

    def serve(app: Any, sock: Any, **_options: Any) -> bool:
        sock.close()  # `up` bound the port first; the application runs in this process instead
        with TestClient(app) as http:  # the lifespan: start-up (and the banner), then shutdown
            secret = (tmp_path / "data" / "admin_key").read_text().strip()
            chat = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}
            answer = http.post("/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {secret}"})
            assert answer.status_code == 200, answer.text
        return True

    monkeypatch.setattr(up_module, "serve", serve)

    def run() -> str:
        old = os.umask(0o022)  # the usual umask: without care, files 0644 in a 0755 directory
        try:
            result = CliRunner().invoke(cli, ["up", "--config", str(config), "--data-dir", str(tmp_path / "data")])
        finally:
            os.umask(old)
        assert result.exit_code == 0, result.output
        return result.output

    yield run


def test_an_operator_set_key_is_not_printed(start: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PILOTHOUSE_ADMIN_KEY", OPERATOR_KEY)
    output = start()
    key_path = tmp_path / "data" / "admin_key"
    assert OPERATOR_KEY not in output
    assert "PILOTHOUSE_ADMIN_KEY" in output and str(key_path) in output
    assert key_path.read_text() == OPERATOR_KEY + "\n"


def test_a_generated_key_is_shown_once_and_saved(start: Any, tmp_path: Path) -> None:
    output = start()
    data = tmp_path / "data"
    secret = (data / "admin_key").read_text().strip()
    assert secret.startswith("ph-") and secret in output
    assert "shown once" in output and str(data / "admin_key") in output

    again = start()  # the store has keys now: nothing is generated, nothing shown
    assert secret not in again and str(data / "admin_key") in again

    store = open_store(f"sqlite:///{data / 'pilothouse.db'}", migrate=False)
    try:
        with store.connect() as conn:
            key = find_by_secret(conn, secret)
        assert key is not None and key.role == "owner"
    finally:
        store.dispose()


def test_the_data_directory_and_its_files_are_private(start: Any, tmp_path: Path) -> None:
    start()
    data = tmp_path / "data"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
    assert {"admin_key", "pilothouse.db"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_key_banner_lines(tmp_path: Path) -> None:
    path = tmp_path / "admin_key"
    generated = key_banner(Bootstrap("proj_1", "key_1", "ph-made-up", generated=True), path)
    assert any("ph-made-up" in line for line in generated) and str(path) in generated[0]
    given = key_banner(Bootstrap("proj_1", "key_1", "ph-given", generated=False), path)
    assert not any("ph-given" in line for line in given) and str(path) in given[0]
    assert "not at" in key_banner(Bootstrap("proj_1", None, None), path)[0]  # keys made elsewhere
    path.write_text("ph-old\n")
    assert key_banner(Bootstrap("proj_1", None, None), path) == [f"owner key: saved to {path} on first start"]
