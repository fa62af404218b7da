"""Policy files: valid ones parse; invalid ones are refused with the line and field at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.guards.policy.loader import PolicyError, parse_policy

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"

GOOD = """\
name: cards
description: no card numbers anywhere
scope:
  routes: [chat]
  models: [fake-chat]
input:
  - scanner: test_phrases
    options: {phrases: [ignore previous instructions]}
    threshold: 0.8
    action: block
output:
  - {scanner: test_pii, action: redact}
storage: {mode: hash, scanners: [test_pii]}
"""


def test_a_valid_policy_parses() -> None:
    policy = parse_policy(GOOD)
    assert policy.name == "cards" and policy.mode == "enforce"
    assert policy.input[0].threshold == 0.8 and policy.input[0].options == {"phrases": ["ignore previous instructions"]}
    assert policy.output[0].action == "redact" and policy.output[0].threshold == 0.5
    assert policy.storage is not None and policy.storage.mode == "hash"
    assert policy.scope.matches(key_id="k", model="fake-chat", prompt=None, route="chat")
    assert not policy.scope.matches(key_id="k", model="other", prompt=None, route="chat")
    assert not policy.scope.matches(key_id="k", model="fake-chat", prompt=None, route="embeddings")


@pytest.mark.parametrize(
    ("text", "line", "field", "says"),
    [
        (GOOD.replace("threshold: 0.8", "threshold: 1.5"), 9, "input[0].threshold", "less than or equal to 1"),
        (GOOD.replace("action: block", "action: explode"), 10, "input[0].action", "'block', 'redact'"),
        (GOOD.replace("scanner: test_phrases", "scanner: nope"), 7, "input[0].scanner", "installed scanners: "),
        (
            GOOD.replace("  - {scanner: test_pii, action: redact}", "  - {scanner: test_pii, acton: redact}"),
            12,
            "output[0].acton",
            "unknown field 'acton'",
        ),
        (GOOD.replace("name: cards", "name: Cards!"), 1, "name", "pattern"),
        (GOOD.replace("mode: hash", "mode: shred"), 13, "storage.mode", "'mask', 'hash'"),
        (GOOD.replace("scanners: [test_pii]}", "scanners: [test_pii, zzz]}"), 13, "storage.scanners[1]", "zzz"),
        (GOOD.replace("name: cards\n", ""), 1, "name", "required field missing"),
    ],
)
def test_errors_name_the_line_and_field(text: str, line: int, field: str, says: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    error = caught.value
    assert (error.line, error.field) == (line, field), str(error)
    assert says in str(error)
    assert str(error).startswith(f"line {line}, {field}: ")


def test_redact_needs_a_scanner_that_redacts() -> None:
    text = GOOD.replace("action: block", "action: redact")
    with pytest.raises(PolicyError, match=r"line 10, input\[0\]\.action: scanner 'test_phrases' cannot redact"):
        parse_policy(text)


def test_the_unknown_scanner_error_lists_the_installed_ones() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("name: x\ninput:\n  - scanner: nope\n")
    assert "test_pii" in str(caught.value) and "test_phrases" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not an empty file"),
        ("- a\n- b\n", "not a list"),
        ("name: x\ninput: [\n", "line 3"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            ),
            "expands to more than",
        ),
        ("name: x\n" + "#" * (70 * 1024), "at most 64 KiB"),
    ],
)
def test_what_is_not_a_policy_at_all(text: str, says: str) -> None:
    with pytest.raises(PolicyError, match=says.replace("[", r"\[")):
        parse_policy(text)


def test_the_shipped_examples_are_valid() -> None:
    """examples/policies/ (used by the docs and the end-to-end tests) parse with the real scanners."""
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert {f.name for f in files} >= {"block-injection.yaml", "redact-pii.yaml"}
    for path in files:
        assert parse_policy(path.read_text()).name == path.stem
