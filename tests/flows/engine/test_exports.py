"""`pilothouse.flows.__all__` is exactly the flows package's public surface."""

from __future__ import annotations

import types

import pilothouse.flows as flows


def test_all_matches_the_public_members() -> None:
    public = {n for n, v in vars(flows).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert sorted(flows.__all__) == sorted(public)
    for name in flows.__all__:
        assert getattr(flows, name).__module__.startswith("pilothouse.flows"), name
