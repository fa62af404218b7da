"""The Python examples of docs/evaluation-metrics.md run and print what the page says they do."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "evaluation-metrics.md"


def test_the_examples_run() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.S | re.M)
    assert len(blocks) == 2
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(PAGE), "exec"), {"__name__": "docs_example"})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("contains          True   passed=True")
    assert lines[1].startswith("groundedness") and "2 of 2 claims supported" in lines[1]
    assert lines[3].startswith("refusal           False  passed=None")
    assert "value=True" in lines[4]
