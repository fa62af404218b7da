"""The `pilothouse` command line against real servers, the audit tamper check, and the Python SDK."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from pilothouse import Pilothouse, PilothouseError
from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.sdk.client import DEFAULT_URL, default_api_key
from tests.conftest import PG_ADMIN_URL
from tests.support.servers import REPO, RunningServer, free_port, start_server

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient server URL, key or data directory: every test says what it uses. Tables are not folded."""
    monkeypatch.setattr(common.console, "width", 250)
    for name in ("PILOTHOUSE_URL", "PILOTHOUSE_API_KEY", "PILOTHOUSE_DATA_DIR", "PILOTHOUSE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


def on(server: RunningServer, key: str | None = None) -> list[str]:
    return ["--url", server.url, "--api-key", key or server.admin_key]


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def failed(result: Result) -> str:
    """The command ended with exit code 1 through typer.Exit (not an exception); returns its stderr."""
    assert result.exit_code == 1, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert isinstance(result.exception, SystemExit), f"crashed with {result.exception!r}"
    assert "Traceback" not in result.output
    return result.stderr


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m pilothouse ARGS` in a real process (exit code and streams as a shell sees them)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pilothouse", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
        timeout=60,
    )


# ---------------------------------------------------------------------------------------------- help


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    if hasattr(command, "list_commands"):  # a group (typer vendors its own click); the root loads lazily
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            yield from _command_paths(command.get_command(ctx, name), (*prefix, name))


ALL_COMMANDS = list(_command_paths(typer.main.get_command(app)))


def test_the_command_tree_is_complete() -> None:
    expected = {
        ("up",),
        ("version",),
        ("keys", "create"),
        ("keys", "list"),
        ("keys", "revoke"),
        ("projects", "create"),
        ("projects", "list"),
        ("traces", "list"),
        ("traces", "show"),
        ("audit", "list"),
        ("audit", "verify"),
        ("models", "list"),
    }
    assert expected <= set(ALL_COMMANDS)


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "pilothouse")
def test_help_of_every_command(path: tuple[str, ...]) -> None:
    result = ok(cli(*path, "--help"))
    assert "Usage:" in result.stdout
    assert "Traceback" not in result.output


def test_groups_without_a_subcommand_show_help() -> None:
    for group in ("keys", "projects", "traces", "audit", "models"):
        result = cli(group)
        assert "Usage:" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_version() -> None:
    from pilothouse import __version__

    assert ok(cli("version")).stdout.strip() == __version__


# ---------------------------------------------------------------------------------------------- errors


def test_unreachable_server_is_one_line_and_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = failed(cli("keys", "list", "--url", url, "--api-key", "ph-x"))
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: cannot reach the Pilothouse server at " + url)


def test_unreachable_server_from_a_real_process() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = run_module("models", "list", "--url", url, "--api-key", "ph-x")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "cannot reach the Pilothouse server" in proc.stderr
    assert proc.stdout == ""


def test_url_from_the_environment() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = failed(cli("traces", "list", env={"PILOTHOUSE_URL": url, "PILOTHOUSE_API_KEY": "ph-x"}))
    assert url in err


def test_verify_a_missing_database_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "pilothouse.db"
    err = failed(cli("audit", "verify", "--database-url", f"sqlite:///{missing}"))
    assert "no database file" in err
    assert not missing.parent.exists(), "verify created a database where there was none"
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello, not a database\n" * 100)
    assert "cannot open the database" in failed(cli("audit", "verify", "--database-url", f"sqlite:///{not_a_db}"))
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert "cannot read the audit log" in failed(cli("audit", "verify", "--database-url", f"sqlite:///{empty}"))


# ---------------------------------------------------------------------------------------------- SDK settings


def test_sdk_reads_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PILOTHOUSE_API_KEY", "ph-from-env")
    with Pilothouse() as ph:
        assert ph.api_key == "ph-from-env"
        assert ph.url == DEFAULT_URL
        assert ph._http.headers["authorization"] == "Bearer ph-from-env"
    with Pilothouse("http://example.test:9/", "ph-explicit") as ph:
        assert ph.api_key == "ph-explicit"
        assert ph.url == "http://example.test:9"


def test_sdk_reads_the_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin_key").write_text("ph-from-file\n")
    monkeypatch.setenv("PILOTHOUSE_DATA_DIR", str(data))
    monkeypatch.setenv("PILOTHOUSE_URL", "http://example.test:7301/")
    with Pilothouse() as ph:
        assert ph.api_key == "ph-from-file"
        assert ph.url == "http://example.test:7301"
    assert default_api_key(data) == "ph-from-file"
    monkeypatch.setenv("PILOTHOUSE_API_KEY", "ph-env-wins")
    assert default_api_key() == "ph-env-wins"


def test_sdk_default_data_dir_and_no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # clean_env made tmp_path the working directory: ./.pilothouse/admin_key is the default location.
    with Pilothouse() as ph:
        assert ph.api_key is None
        assert "authorization" not in ph._http.headers
    (tmp_path / ".pilothouse").mkdir()
    (tmp_path / ".pilothouse" / "admin_key").write_text("  \n")
    assert default_api_key() is None
    (tmp_path / ".pilothouse" / "admin_key").write_text("ph-default-dir\n")
    assert default_api_key() == "ph-default-dir"


def test_sdk_unreachable_server_error() -> None:
    with Pilothouse(f"http://127.0.0.1:{free_port()}", "ph-x") as ph, pytest.raises(PilothouseError) as info:
        ph.list_models()
    assert info.value.status == 0
    assert "cannot reach the Pilothouse server" in info.value.message


# ---------------------------------------------------------------------------------------------- the session server


@pytest.mark.slow
@pytest.mark.model
class TestAgainstTheServer:
    def test_keys_create_list_revoke(self, server: RunningServer) -> None:
        name = f"ci-{uuid.uuid4().hex[:8]}"
        created = as_json(cli("keys", "create", name, "--role", "service", "--json", *on(server)))
        assert created["secret"].startswith("ph-") and created["role"] == "service" and created["name"] == name
        assert created["active"] is True

        listed = ok(cli("keys", "list", "--json", *on(server)))
        keys = json.loads(listed.stdout)
        assert created["id"] in {k["id"] for k in keys}
        assert all("secret" not in k and "key_hash" not in k for k in keys)
        assert created["secret"] not in listed.stdout and server.admin_key not in listed.stdout

        table = ok(cli("keys", "list", *on(server)))
        assert created["id"] in table.stdout and created["secret"] not in table.stdout

        revoked = ok(cli("keys", "revoke", created["id"], *on(server)))
        assert f"revoked {created['id']}" in revoked.stdout
        keys = as_json(cli("keys", "list", "--json", *on(server)))
        assert next(k for k in keys if k["id"] == created["id"])["revoked_at"] is not None
        active = as_json(cli("keys", "list", "--active", "--json", *on(server)))
        assert created["id"] not in {k["id"] for k in active}

        assert "already revoked" in failed(cli("keys", "revoke", created["id"], *on(server)))
        assert "no key" in failed(cli("keys", "revoke", "key_doesnotexist", *on(server)))
        # the revoked secret no longer works
        assert "Invalid or revoked API key" in failed(cli("models", "list", *on(server, created["secret"])))

    def test_key_create_plain_output_shows_the_secret_once(self, server: RunningServer) -> None:
        out = ok(cli("keys", "create", f"plain-{uuid.uuid4().hex[:6]}", "--role", "viewer", *on(server))).stdout
        assert "secret (shown once): ph-" in out
        key_id = out.split()[2]
        ok(cli("keys", "revoke", key_id, *on(server)))

    def test_a_service_key_cannot_manage_keys(self, server: RunningServer) -> None:
        created = as_json(cli("keys", "create", "svc", "--role", "service", "--json", *on(server)))
        try:
            err = failed(cli("keys", "list", *on(server, created["secret"])))
            assert "needs the 'admin' role" in err
        finally:
            ok(cli("keys", "revoke", created["id"], *on(server)))

    def test_projects_create_and_list(self, server: RunningServer) -> None:
        name = f"proj-{uuid.uuid4().hex[:8]}"
        project = as_json(cli("projects", "create", name, "--json", *on(server)))
        assert project["name"] == name and project["id"].startswith("proj_")
        listed = as_json(cli("projects", "list", "--json", *on(server)))
        assert {"default", name} <= {p["name"] for p in listed}
        assert name in ok(cli("projects", "list", *on(server))).stdout
        assert "already exists" in failed(cli("projects", "create", name, *on(server)))
        key = as_json(cli("keys", "create", "in-proj", "--project", name, "--json", *on(server)))
        assert key["project_id"] == project["id"]
        assert "does not exist" in failed(cli("keys", "create", "x", "--project", "no-such-project", *on(server)))

    def test_an_owner_reaches_another_project_and_its_admin_does_not(self, server: RunningServer) -> None:
        name = f"proj-{uuid.uuid4().hex[:8]}"
        ok(cli("projects", "create", name, *on(server)))  # the bootstrap key is an owner key
        admin = as_json(cli("keys", "create", "its-admin", "--role", "admin", "--project", name, "--json", *on(server)))
        assert [k["id"] for k in as_json(cli("keys", "list", "--project", name, "--json", *on(server)))] == [
            admin["id"]
        ]
        everywhere = as_json(cli("keys", "list", "--project", "all", "--json", *on(server)))
        assert admin["project_id"] in {k["project_id"] for k in everywhere} and len(everywhere) > 1
        events = as_json(cli("audit", "list", "--project", name, "--json", *on(server)))
        assert admin["id"] in {e["target"] for e in events if e["action"] == "key.create"}
        assert as_json(cli("budgets", "list", "--project", name, "--json", *on(server))) == []
        assert as_json(cli("limits", "list", "--project", name, "--json", *on(server))) == []
        for command in (("keys", "list"), ("budgets", "list"), ("limits", "list"), ("audit", "list")):
            err = failed(cli(*command, "--project", "default", *on(server, admin["secret"])))
            assert "needs the 'owner' role" in err, command
        err = failed(cli("keys", "create", "x", "--role", "owner", *on(server, admin["secret"])))
        assert "needs the 'owner' role" in err
        bad = cli("keys", "create", "x", "--role", "root", *on(server))
        assert bad.exit_code == 2 and "is not a role" in bad.output

    def test_models_list(self, server: RunningServer) -> None:
        models = as_json(cli("models", "list", "--json", *on(server)))
        assert "smollm2-135m" in {m["id"] for m in models}
        assert "smollm2-135m" in ok(cli("models", "list", *on(server))).stdout

    @staticmethod
    def chat(server: RunningServer) -> str:
        """One small completion through the gateway; returns its trace id."""
        response = httpx.post(
            server.base_url + "/chat/completions",
            json={"model": "smollm2-135m", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4},
            headers={"authorization": f"Bearer {server.admin_key}"},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        return response.headers["x-pilothouse-trace-id"]

    def test_traces_list_and_show(self, server: RunningServer) -> None:
        since = str(time.time() - 1)
        trace_id = self.chat(server)

        page = as_json(cli("traces", "list", "--since", since, "--model", "smollm2-135m", "--json", *on(server)))
        assert trace_id in [t["id"] for t in page["data"]]
        listed = next(t for t in page["data"] if t["id"] == trace_id)
        assert listed["status"] == "ok" and listed["output_tokens"] <= 4
        assert trace_id in ok(cli("traces", "list", "--limit", "50", *on(server))).stdout

        trace = as_json(cli("traces", "show", trace_id, "--json", *on(server)))
        assert trace["id"] == trace_id and trace["model"] == "smollm2-135m"
        llm = [s for s in trace["spans"] if s["kind"] == "llm"]
        assert llm and llm[0]["output_tokens"] == listed["output_tokens"]
        assert isinstance(trace["cost_usd"], str)
        shown = ok(cli("traces", "show", trace_id, *on(server))).stdout
        assert f"trace {trace_id}" in shown and "llm" in shown

        assert "no trace" in failed(cli("traces", "show", "0" * 32, *on(server)))
        assert "cursor" in failed(cli("traces", "list", "--cursor", "garbage", *on(server)))

    def test_traces_list_pages_with_the_cursor(self, server: RunningServer) -> None:
        older, newer = self.chat(server), self.chat(server)
        first = as_json(cli("traces", "list", "--limit", "1", "--json", *on(server)))
        assert first["data"][0]["id"] == newer and first["next_cursor"]
        second = as_json(cli("traces", "list", "--limit", "1", "--cursor", first["next_cursor"], "--json", *on(server)))
        assert second["data"][0]["id"] == older

    def test_bad_key_prints_the_servers_message(self, server: RunningServer) -> None:
        err = failed(cli("keys", "list", *on(server, "ph-not-a-real-key")))
        assert err.strip() == "error: 401: Invalid or revoked API key"

    def test_the_key_file_is_used_when_no_key_is_given(self, server: RunningServer) -> None:
        env = {"PILOTHOUSE_DATA_DIR": str(server.data_dir), "PILOTHOUSE_URL": server.url}
        keys = as_json(cli("keys", "list", "--json", env=env))
        assert any(k["name"] == "bootstrap owner" and k["role"] == "owner" for k in keys)

    def test_sdk_against_the_server(self, server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PILOTHOUSE_URL", server.url)
        monkeypatch.setenv("PILOTHOUSE_API_KEY", server.admin_key)
        with Pilothouse() as ph:
            assert "smollm2-135m" in {m["id"] for m in ph.list_models()}
            assert ph.verify_audit()["ok"] is True
            assert isinstance(ph.list_traces(limit=1)["data"], list)
        with Pilothouse(server.url, "ph-wrong") as ph, pytest.raises(PilothouseError) as info:
            ph.list_keys()
        assert info.value.status == 401 and "Invalid or revoked API key" in info.value.message


# ---------------------------------------------------------------------------------------------- audit tampering


def _make_audit_events(server: RunningServer) -> None:
    """Bootstrap wrote 2 events; add a key creation, its revocation and a project: 5 events in all."""
    key = as_json(cli("keys", "create", "temp", "--role", "viewer", "--json", *on(server)))
    ok(cli("keys", "revoke", key["id"], *on(server)))
    ok(cli("projects", "create", "audited", *on(server)))


def _assert_verify_names_event_2(server: RunningServer, database_url: str) -> None:
    err = failed(cli("audit", "verify", *on(server)))
    assert "audit chain broken at event 2" in err and "altered" in err
    result = cli("audit", "verify", "--json", *on(server))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["checked"] == 1 and report["broken"]["seq"] == 2

    err = failed(cli("audit", "verify", "--database-url", database_url))
    assert "audit chain broken at event 2" in err
    proc = run_module("audit", "verify", "--database-url", database_url)
    assert proc.returncode == 1 and "audit chain broken at event 2" in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.model
def test_audit_verify_detects_a_tampered_sqlite_row(tmp_path: Path) -> None:
    server = start_server(tmp_path / "srv")
    try:
        _make_audit_events(server)
        db = server.data_dir / "pilothouse.db"
        database_url = f"sqlite:///{db}"
        assert "audit chain intact: 5 events verified" in ok(cli("audit", "verify", *on(server))).stdout
        assert "5 events verified" in ok(cli("audit", "verify", "--database-url", database_url)).stdout
        events = as_json(cli("audit", "list", "--json", *on(server)))
        assert [e["action"] for e in events][:4] == ["project.create", "key.create", "key.create", "key.revoke"]

        conn = sqlite3.connect(db)
        try:
            with conn:
                assert conn.execute("UPDATE audit_events SET actor='mallory' WHERE seq=2").rowcount == 1
        finally:
            conn.close()

        _assert_verify_names_event_2(server, database_url)
    finally:
        server.stop()


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    name = f"pht_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.postgres
def test_audit_verify_detects_a_tampered_postgres_row(tmp_path: Path, fresh_pg_url: str) -> None:
    server = start_server(tmp_path / "srv", database_url=fresh_pg_url)
    try:
        _make_audit_events(server)
        assert "5 events verified" in ok(cli("audit", "verify", "--database-url", fresh_pg_url)).stdout
        assert ok(cli("audit", "verify", *on(server)))
        engine = create_engine(fresh_pg_url)
        try:
            with engine.begin() as conn:
                assert conn.execute(text("UPDATE audit_events SET actor='mallory' WHERE seq=2")).rowcount == 1
        finally:
            engine.dispose()
        _assert_verify_names_event_2(server, fresh_pg_url)
    finally:
        server.stop()
