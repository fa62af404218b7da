"""`pilothouse rag query` and `pilothouse rag eval` against a real server."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from typer.testing import CliRunner

from pilothouse.cli.main import app
from pilothouse.sdk.client import Pilothouse
from tests.rag.retrieval.test_http import RECORDS
from tests.support.servers import RunningServer

runner = CliRunner()


def rag(server: RunningServer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["rag", *args, "--url", server.url, "--api-key", server.admin_key])
    return result.exit_code, result.stdout, result.stderr


def test_query_and_eval(server: RunningServer, tmp_path: Path) -> None:
    name = f"cli-{secrets.token_hex(4)}"
    with Pilothouse(server.url, server.admin_key) as ph:
        ph.request("POST", "/api/rag/collections", json={"name": name, "index": "exact"})
        ph.request("POST", f"/api/rag/collections/{name}/records", json={"records": RECORDS})

    code, out, _ = rag(server, "query", name, "rotate the API keys", "--as-group", "ops", "--json")
    assert code == 0 and json.loads(out)["hits"][0]["source"] == "keys"
    code, out, _ = rag(server, "query", name, "rotate the API keys", "--as-group", "ops", "--pack", "100")
    assert code == 0 and "keys" in out and "packed 2 chunks" in out
    code, _, err = rag(server, "query", name, "x", "--filter", "{not json")
    assert code == 2 and "--filter is not valid JSON" in err and "Traceback" not in err
    code, _, err = rag(server, "query", "no-such-collection", "x")
    assert code == 1 and "no collection named" in err

    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(
        json.dumps({"id": "q1", "query": "rotating production keys", "relevant": ["keys"]})
        + "\n"
        + json.dumps({"id": "q2", "query": "how much paid leave", "relevant": ["leave"]})
        + "\n"
    )
    tuned = 'tuned={"mode": "hybrid", "rrf_k": 10, "identity": {"groups": ["ops"]}}'
    code, out, err = rag(
        server,
        "eval",
        name,
        "--queries",
        str(labelled),
        "--depth",
        "10",
        "--config",
        "keyword",
        "--config",
        tuned,
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["queries"] == 2 and set(report["configs"]) == {"keyword", "tuned"}
    assert report["configs"]["tuned"]["mrr"] == 1.0  # both found first (ops reads `keys`)
    assert report["configs"]["keyword"]["recall@10"] == 0.5  # the key itself does not read `keys`
    code, _, err = rag(server, "eval", name)
    assert code == 2 and "--queries" in err
