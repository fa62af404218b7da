"""Checkpoints through the server and the CLI (the application runs in this process): a checkpoint is written
at shutdown, `GET /api/audit/verify` and `pilothouse audit verify --database-url` detect a cut tail and a
replaced table, the public key is exported, and a missing key is a clear error."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pilothouse.cli.main import app as cli_app
from pilothouse.config import ConfigError, Deployment, ModelEntry
from pilothouse.server.state import build_state
from tests.support.asgi_app import app_settings, running

MODELS = [ModelEntry(name="m", deployments=[Deployment(provider="fake", model="echo")])]
runner = CliRunner()


def cli(*args: str) -> Result:
    return runner.invoke(cli_app, ["audit", *args])


def checkpoint_rows(db: Path) -> list[tuple[int, int, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT event_count, last_seq, head_hash FROM audit_checkpoints ORDER BY id").fetchall()
    finally:
        conn.close()


def run_sql(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(sql)
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads no pilothouse.toml or PILOTHOUSE_* settings of the machine running the tests."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("PILOTHOUSE_CONFIG", "PILOTHOUSE_DATA_DIR", "PILOTHOUSE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _served_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, object]]:
    """Start the app, make two admin changes, read the API's view, stop it; returns the database path."""
    data = tmp_path / "data"
    with running(app_settings(data, MODELS), monkeypatch) as (client, _):
        key = client.post("/api/keys", json={"name": "temp", "role": "viewer"}).json()
        seen = {
            "checkpoint": client.post("/api/audit/checkpoints").json(),
            "checkpoints": client.get("/api/audit/checkpoints").json(),
        }
        assert client.delete(f"/api/keys/{key['id']}").status_code == 200
        seen |= {
            "verify": client.get("/api/audit/verify").json(),
            "public": client.get("/api/audit/public-key").json(),
            "by_target": client.get("/api/audit", params={"target": key["id"]}).json(),
            "page": client.get("/api/audit", params={"limit": 2}).json(),
        }
    return data, seen


def test_shutdown_checkpoint_and_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, seen = _served_log(tmp_path, monkeypatch)
    db = data / "pilothouse.db"
    verify = seen["verify"]
    assert isinstance(verify, dict) and verify["ok"] is True and verify["checked"] == 4  # bootstrap's 2 + ours
    assert verify["checkpoints"] == 1 and verify["latest_checkpoint"]["last_seq"] == 3
    assert verify["unsigned_events"] == 1  # the revocation, newer than the checkpoint
    public = seen["public"]
    assert isinstance(public, dict) and public["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    by_target = seen["by_target"]
    assert isinstance(by_target, dict)
    assert [e["action"] for e in by_target["data"]] == ["key.create", "key.revoke"]
    assert by_target["next_after"] is None
    page = seen["page"]
    assert isinstance(page, dict) and page["next_after"] == 2
    written = seen["checkpoint"]
    assert isinstance(written, dict) and written["last_seq"] == 3
    listed = seen["checkpoints"]
    assert isinstance(listed, dict) and [c["id"] for c in listed["data"]] == [written["id"]]

    rows = checkpoint_rows(db)
    assert [r[:2] for r in rows] == [(3, 3), (4, 4)]  # the POSTed one and the one written at shutdown
    key = data / "audit-signing-key.pem"
    assert key.is_file() and len((data / "audit-checkpoints.jsonl").read_text().splitlines()) == 2

    result = cli("verify", "--database-url", f"sqlite:///{db}")  # the key is found beside the database
    assert result.exit_code == 0, result.output
    assert "4 events verified; 2 signed checkpoints, the newest covers event 4" in result.stdout


def test_cli_detects_a_cut_tail_and_a_replaced_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = _served_log(tmp_path, monkeypatch)
    db = data / "pilothouse.db"
    url = f"sqlite:///{db}"
    saved = tmp_path / "saved.db"
    shutil.copy(db, saved)

    run_sql(db, "DELETE FROM audit_events WHERE seq = 4")  # the newest event: the chain alone still holds
    result = cli("verify", "--database-url", url)
    assert result.exit_code == 1, result.output
    assert "audit chain broken at event 4" in result.stderr and "newest events were deleted" in result.stderr

    run_sql(db, "DELETE FROM audit_checkpoints")  # and the checkpoints that named it: the file still does
    result = cli("verify", "--database-url", url, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    reasons = " | ".join(p["reason"] for p in report["problems"])
    assert "not in the database" in reasons and "newest events were deleted" in reasons

    shutil.copy(saved, db)
    run_sql(db, 'UPDATE audit_events SET details = \'{"name": "x"}\' WHERE seq = 3')
    result = cli("verify", "--database-url", url)
    assert result.exit_code == 1 and "audit chain broken at event 3" in result.stderr

    # restarted on the tampered database, the server reports it too
    with running(app_settings(data, MODELS), monkeypatch) as (client, _):
        report = client.get("/api/audit/verify").json()
    assert report["ok"] is False and report["broken"]["seq"] == 3


def test_verify_with_an_exported_public_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, seen = _served_log(tmp_path, monkeypatch)
    public = seen["public"]
    assert isinstance(public, dict)
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    shutil.copy(data / "pilothouse.db", auditor / "copy.db")  # the copy has no key beside it
    pem = auditor / "audit.pub"
    pem.write_text(str(public["public_key_pem"]))
    exported = cli("public-key", "--key-file", str(data / "audit-signing-key.pem"))
    assert exported.exit_code == 0 and exported.stdout == public["public_key_pem"]

    url = f"sqlite:///{auditor / 'copy.db'}"
    result = cli(
        "verify",
        "--database-url",
        url,
        "--public-key",
        str(pem),
        "--checkpoint-file",
        str(data / "audit-checkpoints.jsonl"),
    )
    assert result.exit_code == 0, result.output
    assert "2 signed checkpoints" in result.stdout

    # no key anywhere, but the database has checkpoints: refusing is the only safe answer
    result = cli("verify", "--database-url", url)
    assert result.exit_code == 1
    assert "signed checkpoints but no key to check them" in result.stderr

    result = cli("verify", "--database-url", url, "--public-key", str(auditor / "missing.pub"))
    assert result.exit_code == 1 and "no audit signing key at" in result.stderr and "missing.pub" in result.stderr
    assert "Traceback" not in result.output


def test_a_broken_key_file_stops_the_server_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = data / "audit-signing-key.pem"
    key.parent.mkdir(parents=True, mode=0o700)
    key.write_text("not a key\n")
    with pytest.raises(ConfigError, match=r"audit-signing-key\.pem is not an unencrypted PEM private key"):
        build_state(app_settings(data, MODELS))
