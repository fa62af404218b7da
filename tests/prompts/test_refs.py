"""Prompt references and the canary version choice."""

from __future__ import annotations

from collections import Counter

import pytest

from pilothouse.prompts.registry.refs import PromptRef, parse_model_ref, parse_ref, parse_selector
from pilothouse.prompts.registry.splits import choose_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("support-answer", PromptRef("support-answer", label="production")),
        ("support-answer@3", PromptRef("support-answer", version=3)),
        ("support-answer@production", PromptRef("support-answer", label="production")),
        ("support-answer@staging-eu", PromptRef("support-answer", label="staging-eu")),
        ("a.b_c@sha:ABCDEF12", PromptRef("a.b_c", sha="abcdef12")),
        ("  x1@latest ", PromptRef("x1", label="latest")),
    ],
)
def test_parse_ref(text: str, expected: PromptRef) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Support", "invalid prompt name"),
        ("-x", "invalid prompt name"),
        ("x@", "nothing after '@'"),
        ("x@0", "numbered from 1"),
        ("x@sha:abc", "at least 6 hex digits"),
        ("x@sha:xyz123", "at least 6 hex digits"),
        ("x@Prod", "invalid reference"),
        ("x@a b", "invalid reference"),
    ],
)
def test_parse_ref_errors_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_ref(text)


def test_selector_and_str_round_trip() -> None:
    for text in ("p@3", "p@production", "p@sha:abcdef"):
        ref = parse_ref(text)
        assert str(ref) == text
        assert parse_selector(ref.name, ref.selector) == ref


def test_model_ref() -> None:
    assert parse_model_ref("smollm2-135m") is None
    assert parse_model_ref("prompt:support-answer@2") == PromptRef("support-answer", version=2)
    assert parse_model_ref("prompt:support-answer") == PromptRef("support-answer", label="production")


def test_choose_version_is_sticky_and_weighted() -> None:
    splits = [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
    picks = Counter(choose_version(splits, f"user-{i}") for i in range(5000))
    assert 0.07 < picks[2] / 5000 < 0.13
    assert all(choose_version(splits, f"user-{i}") == choose_version(splits, f"user-{i}") for i in range(200))
    # The order the splits are given in does not matter.
    assert all(choose_version(splits[::-1], f"u{i}") == choose_version(splits, f"u{i}") for i in range(200))


def test_growing_the_canary_keeps_its_users() -> None:
    small = [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
    large = [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]
    canary_users = [f"u{i}" for i in range(2000) if choose_version(small, f"u{i}") == 2]
    assert canary_users
    assert all(choose_version(large, u) == 2 for u in canary_users)


def test_choose_version_single_and_invalid() -> None:
    assert choose_version([{"version": 7, "weight": 100}], "anyone") == 7
    with pytest.raises(ValueError):
        choose_version([], "k")
