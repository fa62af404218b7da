"""The README's Python example runs as written against a live server (only the port differs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import REPO, RunningServer

pytestmark = [pytest.mark.model, pytest.mark.slow]


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_openai_example_runs(server: RunningServer, tmp_path: Path) -> None:
    blocks = readme_python_blocks()
    assert blocks, "the README has no python example"
    code = blocks[0].replace("http://127.0.0.1:7300/v1", server.base_url)
    assert server.base_url in code
    (tmp_path / ".pilothouse").mkdir()
    (tmp_path / ".pilothouse" / "admin_key").write_text(server.admin_key + "\n")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "384" in lines
    assert "smollm2-135m" in lines[-1] and "all-minilm-l6-v2" in lines[-1]
    assert "CompletionUsage" in lines[0]
