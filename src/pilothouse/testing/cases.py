"""Dataset items as pytest parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.datasets.files import load_file

__all__ = ["cases"]


def cases(path: str | Path, *, split: str | None = None) -> list[Any]:
    """The items of a `.jsonl` or `.csv` dataset file (docs/datasets.md#files) as `pytest.param`s whose ids are
    the items' ids, so a failing case is named; `split` keeps one split's items. Bad files raise ItemError
    naming the line."""
    items = load_file(Path(path))
    chosen = [item for item in items if split is None or item.get("split") == split]
    return [pytest.param(item, id=str(item["id"])) for item in chosen]
