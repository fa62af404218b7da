"""The `flow` commands that talk to a server start as light as the other management commands: they load the
HTTP client, never the flows package (the engine, pydantic models, the store) nor anything heavy."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.test_startup import HEAVY

_PROBE = """
import json, sys
from pilothouse.cli.main import app
codes = []
for argv in {argvs!r}:
    try:
        app(argv, prog_name="pilothouse")
    except SystemExit as exc:
        codes.append(exc.code)
print(json.dumps({{"codes": codes, "modules": sorted(sys.modules)}}))
"""

DEAD = ["--url", "http://127.0.0.1:9", "--api-key", "ph-x"]


def test_run_list_show_and_approve_load_no_flow_engine() -> None:
    argvs = [
        ["flow", "run", "examples/flows/nope.py:flow", *DEAD],  # no such file: said before connecting (exit 2)
        ["flow", "run", "examples/flows/approval_demo.py:flow", *DEAD],  # cannot connect (exit 1)
        ["flow", "list", *DEAD],
        ["flow", "show", "run_x", *DEAD],
        ["flow", "approve", "run_x", "--step", "approve", *DEAD],
    ]
    code = _PROBE.format(argvs=argvs)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["codes"] == [2, 1, 1, 1, 1]
    loaded = set(found["modules"])
    assert "httpx" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []
    assert sorted(m for m in loaded if m.startswith("pilothouse.flows")) == []
