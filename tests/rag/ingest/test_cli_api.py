"""End to end against a running server (`pilothouse up`): create a collection, ingest a folder with the CLI,
change one file and delete another, `status` lists exactly those, `sync` updates one and removes one; records
through the API; bad input is a clear 4xx and a one-line CLI error."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.rag.embedders import DEFAULT_MODEL
from tests.support.servers import RunningServer

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "width", 250)
    for name in ("PILOTHOUSE_URL", "PILOTHOUSE_API_KEY", "PILOTHOUSE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def cli(server: RunningServer, *args: str) -> Result:
    return runner.invoke(app, [args[0], args[1], "--url", server.url, "--api-key", server.admin_key, *args[2:]])


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return json.loads(result.stdout)


def test_cli_ingest_status_sync(server: RunningServer, tmp_path: Path) -> None:
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nEmployees get 25 days of paid leave per year.\n", encoding="utf-8")
    (folder / "travel.txt").write_text("Travel must be booked through the portal.\n", encoding="utf-8")
    (folder / "old.txt").write_text("The old expense policy allowed first-class rail.\n", encoding="utf-8")
    name = f"handbook-{int(time.time() * 1000) % 10**8}"

    made = ok_json(cli(server, "rag", "create", name, "--index", "exact", "--json"))
    assert made["embedding_model"] == DEFAULT_MODEL == "all-MiniLM-L6-v2-int8" and made["dimensions"] == 384
    first = ok_json(cli(server, "rag", "ingest", name, str(folder), "--group", "staff", "--json"))
    assert len(first["added"]) == 3 and first["chunks_embedded"] == 3
    again = ok_json(cli(server, "rag", "ingest", name, str(folder), "--group", "staff", "--json"))
    assert again["unchanged"] == 3 and again["added"] == [] and again["chunks_embedded"] == 0

    (folder / "leave.md").write_text("# Leave\n\nEmployees get 30 days of paid leave per year.\n", encoding="utf-8")
    later = time.time() + 5
    os.utime(folder / "leave.md", (later, later))
    (folder / "old.txt").unlink()
    status = ok_json(cli(server, "rag", "status", name, "--json"))
    assert {(Path(s["source"]).name, s["reason"]) for s in status["stale"]} == {
        ("leave.md", "changed"),
        ("old.txt", "missing"),
    }
    synced = ok_json(cli(server, "rag", "sync", name, "--json"))
    assert [Path(s).name for s in synced["updated"]] == ["leave.md"]
    assert [Path(s).name for s in synced["removed"]] == ["old.txt"]
    assert synced["chunks_embedded"] == 1 and synced["unchanged"] == 1
    assert ok_json(cli(server, "rag", "status", name, "--json"))["stale"] == []

    docs = ok_json(cli(server, "rag", "documents", name, "--json"))
    assert sorted((Path(d["source"]).name, d["version"], d["acl"]["groups"]) for d in docs) == [
        ("leave.md", 2, ["staff"]),
        ("travel.txt", 1, ["staff"]),
    ]
    listed = ok_json(cli(server, "rag", "collections", "--json"))
    mine = next(c for c in listed if c["name"] == name)
    assert mine["documents"] == 2 and mine["chunks"] == 2 and mine["generation"] >= 3

    table = cli(server, "rag", "documents", name)
    assert table.exit_code == 0 and "leave.md" in table.stdout and "g:staff" in table.stdout

    note = tmp_path / "note.txt"
    note.write_text("A single file ingested by name.\n", encoding="utf-8")
    assert len(ok_json(cli(server, "rag", "ingest", name, str(note), "--json"))["added"]) == 1
    note.unlink()
    stale = ok_json(cli(server, "rag", "status", name, "--json"))["stale"]
    assert [(Path(s["source"]).name, s["reason"]) for s in stale] == [("note.txt", "missing")]

    redone = ok_json(cli(server, "rag", "reembed", name, "--json"))
    assert redone["chunks"] == 3
    gone = ok_json(cli(server, "rag", "delete", name, "--yes", "--json"))
    assert gone["deleted"] is True


def test_cli_errors_are_one_line(server: RunningServer, tmp_path: Path) -> None:
    missing = cli(server, "rag", "ingest", "no-such-collection", str(tmp_path))
    assert missing.exit_code == 1 and "no RAG collection named" in missing.stderr and "Traceback" not in missing.output
    nofile = cli(server, "rag", "ingest", "whatever", str(tmp_path / "nope"))
    assert nofile.exit_code == 2 and "no such file or folder" in nofile.stderr
    bad = cli(server, "rag", "create", "Bad Name!")
    assert bad.exit_code == 1 and "error" in bad.stderr


def test_api_records_and_errors(server: RunningServer) -> None:
    headers = {"authorization": f"Bearer {server.admin_key}"}
    name = f"records-{int(time.time() * 1000) % 10**8}"
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
        assert http.post("/api/rag/collections", json={"name": name, "index": "exact"}).status_code == 201
        dup = http.post("/api/rag/collections", json={"name": name})
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "collection_exists"
        unknown = http.post("/api/rag/collections", json={"name": name + "x", "embedding_model": "nope"})
        assert unknown.status_code == 400 and "available are" in unknown.json()["error"]["message"]
        bad_overlap = http.post(
            "/api/rag/collections", json={"name": name + "y", "settings": {"chunk_tokens": 32, "overlap_tokens": 30}}
        )
        assert bad_overlap.status_code == 400 and bad_overlap.json()["error"]["param"] == "settings"
        records = [
            {"id": "faq-1", "text": "Refunds take five days.", "metadata": {"lang": "en"}},
            {"id": "faq-2", "text": "Support is open on weekdays.", "groups": ["support"]},
        ]
        added = http.post(f"/api/rag/collections/{name}/records", json={"records": records}).json()
        assert added["added"] == ["faq-1", "faq-2"] and added["chunks_embedded"] == 2
        changed = http.post(
            f"/api/rag/collections/{name}/records",
            json={"records": [{"id": "faq-1", "text": "Refunds take three days."}], "remove": ["faq-2"]},
        ).json()
        assert changed["updated"] == ["faq-1"] and changed["removed"] == ["faq-2"]
        reserved = http.post(
            f"/api/rag/collections/{name}/records",
            json={"records": [{"id": "x", "text": "t", "metadata": {"_acl": ["*"]}}]},
        )
        assert reserved.status_code == 400 and reserved.json()["error"]["code"] == "invalid_document"
        no_id = http.post(f"/api/rag/collections/{name}/records", json={"records": [{"text": "t"}]})
        assert no_id.status_code == 400 and "`id`" in no_id.json()["error"]["message"]
        assert http.get("/api/rag/collections/nope/documents").status_code == 404
