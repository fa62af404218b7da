"""`pilothouse cache` starts as fast as the other groups: its help loads nothing heavy, not even the HTTP client,
and no other command group."""

from __future__ import annotations

from tests.cli.test_startup import _heavy, _modules_after


def test_cache_help_loads_only_its_own_group_and_nothing_heavy() -> None:
    loaded = _modules_after(["cache", "--help"], ["cache", "threshold", "--help"], ["cache", "explain", "--help"])
    assert "pilothouse.cli.cache" in loaded
    assert _heavy(loaded) == [] and "httpx" not in loaded
    others = ("audit", "budgets", "cost", "keys", "models", "prompt", "scores", "traces")
    assert sorted(m for m in loaded if m.removeprefix("pilothouse.cli.") in others) == []
    assert "pilothouse.gateway.cache" not in loaded and "pilothouse.server.api.cache" not in loaded
