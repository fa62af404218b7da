"""The secrets scanner: each provider format, assignments, high-entropy strings, and hard negatives."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from pilothouse.guards.scanner import ScanContext
from pilothouse.guards.secrets import SecretsScanner, looks_random

CASES = json.loads((Path(__file__).resolve().parents[1] / "data" / "pii" / "secrets_cases.json").read_text())["cases"]
ALNUM = string.ascii_letters + string.digits


def fake(n: int, alphabet: str = ALNUM, seed: int = 7) -> str:
    rnd = random.Random(seed)
    return "".join(rnd.choice(alphabet) for _ in range(n))


def found(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in SecretsScanner().scan(text, ScanContext()).findings]


@pytest.mark.parametrize(
    ("kind", "secret"),
    [
        ("OPENAI_API_KEY", "sk-proj-" + fake(100, ALNUM + "_-")),
        ("OPENAI_API_KEY", "sk-" + fake(20) + "T3BlbkFJ" + fake(20, seed=8)),
        ("ANTHROPIC_API_KEY", "sk-ant-api03-" + fake(93, ALNUM + "_-") + "AA"),
        ("AWS_ACCESS_KEY_ID", "AKIA" + fake(16, string.ascii_uppercase + string.digits)),
        ("AWS_ACCESS_KEY_ID", "ASIA" + fake(16, string.ascii_uppercase + string.digits)),
        ("GITHUB_TOKEN", "ghp_" + fake(36)),
        ("GITHUB_TOKEN", "gho_" + fake(36)),
        ("GITHUB_TOKEN", "github_pat_" + fake(22) + "_" + fake(59, seed=9)),
        ("SLACK_TOKEN", "xoxb-123456789012-1234567890123-" + fake(24, string.ascii_lowercase + string.digits)),
        ("STRIPE_KEY", "sk_live_" + fake(24)),
        ("GOOGLE_API_KEY", "AIza" + fake(35)),
        ("SENDGRID_API_KEY", "SG." + fake(22) + "." + fake(43, seed=3)),
        (
            "JWT",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        ("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\n" + fake(64) + "\n-----END RSA PRIVATE KEY-----"),
    ],
)
def test_each_provider_format_is_found_in_prose(kind: str, secret: str) -> None:
    text = f"Here it is: {secret} (do not share)."
    verdict = SecretsScanner().scan(text, ScanContext())
    assert [(f.kind, text[f.start : f.end]) for f in verdict.findings] == [(kind, secret)]
    assert verdict.redacted == f"Here it is: <{kind}> (do not share)."
    assert verdict.score >= 0.9


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('password = "hunter22"', "hunter22"),
        ("DB_PASSWORD=s3cr3t-Pa55", "s3cr3t-Pa55"),
        ('{"client_secret": "abcDEF123456"}', "abcDEF123456"),
        ("aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ],
)
def test_assigned_secrets_mask_only_the_value(text: str, value: str) -> None:
    assert found(text) == [("SECRET_ASSIGNMENT", value)]


def test_random_string_in_prose_is_high_entropy() -> None:
    token = fake(40, ALNUM + "+/")
    assert found(f"I found {token} in the logs") == [("HIGH_ENTROPY_STRING", token)]


@pytest.mark.parametrize(
    "text",
    [
        "request 123e4567-e89b-12d3-a456-426614174000 failed",
        "fixed in 3f786850e387550fdab836ed7e6dc881de23001b",
        "digest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "getUserAccountSettingsByIdentifier2 is a method",
        "password=${DB_PASSWORD}",
        "API_KEY=<your-api-key>",
        "Please reset my password, I forgot it.",
        "the token: expired yesterday",
        "https://docs.google.com/document/d/1aBcD3fGhIjK4lMnOpQ5rStUvWxYz6AbCdEfGh/edit",
        "<img src='data:image/png;base64," + fake(400, ALNUM + "+/") + "'>",
    ],
)
def test_hard_negatives_are_quiet(text: str) -> None:
    assert found(text) == []


def test_hex_and_words_do_not_look_random() -> None:
    assert not looks_random("9f86d081884c7d659a2feaa0c55ad015")
    assert not looks_random("ThisIsAVeryLongVariableNameHere")
    assert looks_random(fake(32))


def test_self_written_set_has_no_misses_or_false_alarms() -> None:
    scanner = SecretsScanner()
    errors = []
    for case in CASES:
        kinds = {f.kind for f in scanner.scan(case["text"], ScanContext()).findings}
        if not set(case["kinds"]) <= kinds or (not case["kinds"] and kinds):
            errors.append((case["text"][:60], case["kinds"], sorted(kinds)))
    assert errors == []


def test_entropy_option_turns_the_generic_rule_off() -> None:
    token = fake(40)
    assert SecretsScanner(entropy=False).find(f"x {token} y") == []


@pytest.mark.parametrize("options", [{"how": "shred"}, {"entropy": "yes"}])
def test_bad_options_are_value_errors(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SecretsScanner(**options)  # type: ignore[arg-type]
