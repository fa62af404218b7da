"""The `secrets` scanner: credentials in a text (API keys, tokens, private keys, assigned passwords, and
random-looking strings), with a redacted text.

Three kinds of rules, from the most to the least certain:

1. Provider formats (score 0.95): OpenAI, Anthropic, AWS access key ids, GitHub, Slack, Stripe, Google,
   SendGrid, PyPI, Twilio, Square, Azure storage, JWTs and private key blocks. Where `detect-secrets` has a
   detector for the format its pattern is reused (`denylist` of its plugin classes; the JWT one also with its
   structural check); newer formats it lacks (`sk-proj-`, `sk-ant-`, `github_pat_`, `AIza`) are ours.
2. Assignments (score 0.75): a value given to a secret-sounding name, `password=...`, `"api_key": "..."`,
   `aws_secret_access_key = ...`, `token: ...`; only the value is the span. Placeholders (`<password>`,
   `${TOKEN}`, `****`, `changeme`) and plain words without a digit or symbol are ignored.
3. High-entropy strings (score 0.6): a token of 24+ base64/url-safe characters with upper case, lower case and
   digits whose Shannon entropy is close to that of random data.

Not reported, to keep ordinary prose and code quiet: hex strings on their own (git SHAs, content hashes,
digests), UUIDs, `data:` URIs (inline images), public keys and certificates (`ssh-rsa AAAA...`, PEM public
key and certificate blocks), subresource-integrity hashes (`sha512-...`), and random-looking tokens inside URLs
(document and video ids);
a credential in a URL is still found by its provider format or as an assignment (`?api_key=...`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

from pilothouse.guards.pii.redaction import HOW_CHOICES, redact
from pilothouse.guards.pii.scanner import resolve_overlaps
from pilothouse.guards.prefilter import RuleGate
from pilothouse.guards.scanner import Finding, ScanContext, Verdict, clean_verdict

FORMAT_SCORE = 0.95
ASSIGNMENT_SCORE = 0.75
ENTROPY_SCORE = 0.6
ENTROPY_MIN_LENGTH = 24
ENTROPY_FACTOR = 0.85
"""A token is random-looking when its entropy (bits per character) is at least this share of log2 of its
length (capped at 64): random base64 of 24 characters has a median of ~4.25 bits against a threshold of 3.9."""

_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]*")
_JWT_TAIL = re.compile(r"[A-Za-z0-9_.+/=-]*")


@dataclass(frozen=True, slots=True)
class FormatRule:
    """One provider format: the pattern, and what the match is extended over (a detect-secrets pattern may
    match only a key's fixed-length prefix, or end lazily)."""

    kind: str
    pattern: re.Pattern[str]
    extend: re.Pattern[str] | None = None
    check: Callable[[str], bool] | None = None


def _own(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def _jwt_is_valid(token: str) -> bool:
    return bool(JwtTokenDetector.is_formally_valid(token))


FORMAT_RULES: tuple[FormatRule, ...] = (
    FormatRule("ANTHROPIC_API_KEY", _own(r"(?<![\w-])sk-ant-[a-z]+\d{2}-[A-Za-z0-9_-]{32,}")),
    FormatRule("OPENAI_API_KEY", _own(r"(?<![\w-])sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{32,}")),
    FormatRule("OPENAI_API_KEY", _own(r"(?<![\w-])sk-(?!ant-)[A-Za-z0-9]{40,}(?![\w-])")),
    *(FormatRule("OPENAI_API_KEY", p, extend=_TOKEN_TAIL) for p in OpenAIDetector.denylist),
    FormatRule("AWS_ACCESS_KEY_ID", AWSKeyDetector.denylist[0]),
    FormatRule("GITHUB_TOKEN", _own(r"(?<![\w-])github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}")),
    *(FormatRule("GITHUB_TOKEN", p) for p in GitHubTokenDetector.denylist),
    FormatRule("SLACK_TOKEN", SlackDetector.denylist[0], extend=_TOKEN_TAIL),
    FormatRule("SLACK_WEBHOOK", SlackDetector.denylist[1]),
    *(FormatRule("STRIPE_KEY", p, extend=_TOKEN_TAIL) for p in StripeDetector.denylist),
    FormatRule("GOOGLE_API_KEY", _own(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}")),
    *(FormatRule("SENDGRID_API_KEY", p) for p in SendGridDetector.denylist),
    *(FormatRule("PYPI_TOKEN", p) for p in PypiTokenDetector.denylist),
    *(FormatRule("TWILIO_KEY", p) for p in TwilioKeyDetector.denylist),
    *(FormatRule("SQUARE_OAUTH_SECRET", p) for p in SquareOAuthDetector.denylist),
    *(FormatRule("AZURE_STORAGE_KEY", p) for p in AzureStorageKeyDetector.denylist),
    *(FormatRule("JWT", p, extend=_JWT_TAIL, check=_jwt_is_valid) for p in JwtTokenDetector.denylist),
    FormatRule(
        "PRIVATE_KEY",
        _own(
            r"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
            r"(?:[\s\S]{0,16384}?-----END \1-----|[A-Za-z0-9+/=:,\s-]*)"
        ),
    ),
    FormatRule("PRIVATE_KEY", _own(r"PuTTY-User-Key-File-\d: .*(?:\n[A-Za-z0-9 :+/=-]+){0,64}")),
)

_SECRET_NAME = (
    r"(?:[A-Za-z0-9]+[_-])*"
    r"(?:password|passwd|passwort|pwd|pass|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key"
    r"|private[_-]?key|auth|credentials?|client[_-]?secret)"
    r"(?:[_-][A-Za-z0-9]+)*"
)
_ASSIGNMENT = re.compile(
    rf"(?<![\w-]){_SECRET_NAME}[\"'\]]?\s*(?::=|=>|=|:)\s*(?P<quote>[\"'`]?)(?P<value>[^\s\"'`,;]{{6,}})(?P=quote)",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"^(?:[<{$%\[(].*|.*[>})\]]|\*+|x+|\.+|null|none|nil|true|false|undefined|changeme|password\w*|secret|"
    r".*(?:\.\.\.|…)|redacted|example\w*|your[_-].*|my[_-].*|xxx.*|\w+\(.*|os\.environ.*|process\.env.*|env\..*)$",
    re.IGNORECASE,
)
_ENTROPY_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{24,}={0,2}(?![A-Za-z0-9+/=_-])")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"')\]]+")
_PUBLIC_MATERIAL = re.compile(
    r"-----BEGIN (?:[A-Z0-9 ]*PUBLIC KEY(?: BLOCK)?|CERTIFICATE)-----[\s\S]*?-----END [A-Z0-9 ]+-----"
    r"|(?:ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-[a-z0-9]+) AAAA[A-Za-z0-9+/=]+"
    r"|\bsha(?:256|384|512)-[A-Za-z0-9+/=]+"
)
_DATA_URI = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w=.-]+)*;base64,[A-Za-z0-9+/=\s]+")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]+$")


def shannon_entropy(token: str) -> float:
    """Bits per character of `token`'s character distribution."""
    counts = Counter(token)
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_random(token: str) -> bool:
    """Whether `token` looks like random key material rather than a word, identifier, hash or path."""
    body = token.rstrip("=")
    if len(body) < ENTROPY_MIN_LENGTH or _HEX.match(body) or _UUID.match(body) or body.count("/") > 2:
        return False
    if not (any(c.isdigit() for c in body) and any(c.isupper() for c in body) and any(c.islower() for c in body)):
        return False
    return shannon_entropy(body) >= ENTROPY_FACTOR * math.log2(min(len(body), 64))


_FORMAT_GATE = RuleGate(FORMAT_RULES)
"""Each format's necessary literals (`sk-ant-`, `xox`, `AKIA`...): a text without them is not scanned for it."""


def _format_findings(text: str) -> Iterator[Finding]:
    for rule in _FORMAT_GATE.candidates(text):
        for match in rule.pattern.finditer(text):
            start, end = match.span()
            if start > 0 and (text[start - 1].isalnum() and rule.kind != "PRIVATE_KEY"):
                continue
            if rule.extend is not None:
                tail = rule.extend.match(text, end)
                end = tail.end() if tail else end
            if rule.check is not None and not rule.check(text[start:end]):
                continue
            end = len(text[start:end].rstrip(" \t\r\n."))
            yield Finding(rule.kind, start, start + end, FORMAT_SCORE, f"{rule.kind.lower().replace('_', ' ')}")


def _assignment_findings(text: str) -> Iterator[Finding]:
    if "=" not in text and ":" not in text:  # every assignment operator (`=`, `:`, `:=`, `=>`) has one of them
        return
    for match in _ASSIGNMENT.finditer(text):
        value = match.group("value")
        if _PLACEHOLDER.match(value) or len(set(value)) < 3:
            continue
        quoted = bool(match.group("quote"))
        if not quoted and value.isalpha():
            continue
        yield Finding(
            "SECRET_ASSIGNMENT", match.start("value"), match.end("value"), ASSIGNMENT_SCORE, "assigned secret"
        )


def _entropy_findings(text: str) -> Iterator[Finding]:
    skipped: list[tuple[int, int]] | None = None  # found once a token looks random (most texts have none)
    for match in _ENTROPY_TOKEN.finditer(text):
        start, end = match.span()
        if not looks_random(match.group()):
            continue
        if skipped is None:
            skipped = [m.span() for pattern in (_URL, _DATA_URI, _PUBLIC_MATERIAL) for m in pattern.finditer(text)]
        if any(s <= start and end <= e for s, e in skipped):
            continue
        yield Finding("HIGH_ENTROPY_STRING", start, end, ENTROPY_SCORE, "random-looking string")


class SecretsScanner:
    """Credentials in a text: provider key formats, assigned secrets, and random-looking strings.

    Options: `how` (`mask`, `hash` or `drop`), `salt` (the key of `hash` redaction), `entropy` (whether the
    high-entropy rule runs; default on)."""

    name: ClassVar[str] = "secrets"
    redacts: ClassVar[bool] = True

    def __init__(self, *, how: str = "mask", salt: str = "", entropy: bool = True) -> None:
        if how not in HOW_CHOICES:
            raise ValueError(f"how must be one of {', '.join(HOW_CHOICES)}")
        if not isinstance(salt, str):
            raise ValueError("salt must be a string")
        if not isinstance(entropy, bool):
            raise ValueError("entropy must be true or false")
        self.how = how
        self.salt = salt
        self.entropy = entropy

    def find(self, text: str) -> list[Finding]:
        """The findings in `text`, without overlaps (a provider format wins over the generic rules)."""
        found = [*_format_findings(text), *_assignment_findings(text)]
        if self.entropy:
            found.extend(_entropy_findings(text))
        return resolve_overlaps(found)

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        findings = self.find(text)
        if not findings:
            return clean_verdict(self.name, text, redacts=True)
        return Verdict(
            scanner=self.name,
            score=max(f.score for f in findings),
            findings=tuple(findings),
            redacted=redact(text, findings, self.how, salt=self.salt),
        )
