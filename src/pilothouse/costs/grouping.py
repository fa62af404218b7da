"""What a cost report can group by: a module of its own so the CLI can list the choices without importing the
report's SQL and numeric code."""

from __future__ import annotations

from typing import Literal, get_args

GroupBy = Literal["key", "project", "model", "user", "prompt"]
GROUP_BY: tuple[str, ...] = get_args(GroupBy)
