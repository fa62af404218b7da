"""The test scanners of fakes.py, registered for every test here (as a plugin would be)."""

from __future__ import annotations

import pytest

from pilothouse.guards import registry

FAKES = {
    "test_pii": "tests.guards.policy.fakes:CardsAndEmails",
    "test_phrases": "tests.guards.policy.fakes:Phrases",
    "test_counting": "tests.guards.policy.fakes:Counting",
}


@pytest.fixture(autouse=True)
def fake_scanners(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_BUILTIN", {**registry._BUILTIN, **FAKES})
