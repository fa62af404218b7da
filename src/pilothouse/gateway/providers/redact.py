"""Removing credentials from upstream error text before a caller or a stored trace sees it.

Upstreams quote requests back in their errors (a proxy that echoes its headers, "Incorrect API key provided:
sk-..."), so error text is redacted where provider errors are made (`_http.py`) and again where they become
API errors (`pipeline.provider_error_to_api`, which every provider's error passes through). Two things go:

* the exact values of the configured upstream credentials: every deployment's API key and the values of its
  credential-like extra headers, registered with `remember_deployment` when its provider is built;
* anything shaped like a credential: `Authorization` values (`Bearer ...`, `Basic ...`), credential headers
  and query parameters, passwords in URLs, JWTs, and the key formats of common providers (`sk-...`,
  `sk-ant-...`, `AKIA...`, `AIza...`, `ghp_...`, `hf_...`, `xox?-...`, ...).

Each is replaced by `[REDACTED]`, keeping the rest of the upstream's reason readable. Every repetition that
can fail is bounded, so an upstream cannot make redaction slow (the text is at most 64 KiB).
"""

from __future__ import annotations

import re
import threading

from pilothouse.config import Deployment

REDACTED = "[REDACTED]"
# Shorter configured values are not treated as secrets: replacing them would garble ordinary words.
MIN_SECRET_LENGTH = 8
_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|password|signature|cookie", re.IGNORECASE)

# Authorization values. Case-sensitive schemes, so that "basic validation" in a sentence stays as it is.
_SCHEME = re.compile(
    r"\b(Bearer|bearer|BEARER)\s{1,8}([A-Za-z0-9._~+/=:-]{6,})"  # OAuth and API-key bearer tokens
    # base64 user:password; a digit, symbol or inner capital tells it from a word ("Basic validation failed")
    r"|\b(Basic|BASIC)\s{1,8}(?=[A-Za-z0-9+/]*[0-9+/=]|[A-Za-z][a-z]*[A-Z])([A-Za-z0-9+/]{8,}={0,2})"
)
# `x-api-key: value`, `"api-key": "value"`, `Authorization=value`, `API key provided: value`, `?key=value`.
_NAMED = re.compile(
    r"((?:\b(?:proxy-)?authorization|\b[\w-]{0,40}api[-_ ]?key(?:\s{1,8}provided)?|\bx-goog-api-key|\baccess[-_]token"
    r"|\brefresh[-_]token|\bclient[-_]secret|\bpassword|\bsecret|[?&]key|[?&]token)[\"']?\s{0,8}[:=]\s{0,8}[\"']?)"
    r"(?!(?:Bearer|Basic)\s)(?!\[REDACTED\])([^\s\"',;&}\]]{4,})",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]{0,30}://[^/\s:@\"']{0,256}:)([^/\s@\"']{1,256})(@)", re.IGNORECASE)
_SHAPES = re.compile(
    "|".join(
        (
            r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{8,}",  # OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), OpenRouter
            r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])",  # AWS access key ids
            r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{30,}",  # Google API keys
            r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
            r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{22,}",
            r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
            r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}",  # Hugging Face
            r"(?<![A-Za-z0-9])(?:gsk|xai|r8|pplx|csk|fw|nvapi)[_-][A-Za-z0-9_-]{20,}",  # Groq, xAI, Replicate, ...
            r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,1024}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{8,}",  # JWTs
        )
    )
)

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_by_length: tuple[str, ...] = ()


def remember_secret(value: str | None) -> None:
    """Redact this exact value from now on (values shorter than MIN_SECRET_LENGTH are ignored)."""
    global _known, _by_length
    if not value or len(value.strip()) < MIN_SECRET_LENGTH:
        return
    value = value.strip()
    with _lock:
        if value in _known:
            return
        _known = _known | {value}
        _by_length = tuple(sorted(_known, key=len, reverse=True))  # a key that contains another goes first


def remember_deployment(deployment: Deployment) -> None:
    """Register a deployment's upstream credentials: its API key and its credential-like extra headers."""
    remember_secret(deployment.api_key())
    headers = deployment.options.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            if _CREDENTIAL_HEADER.search(str(name)):
                remember_secret(str(value))
                _scheme, _, credential = str(value).partition(" ")
                remember_secret(credential)


def _scheme_only(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(3)} {REDACTED}"


def redact(text: str) -> str:
    """`text` with every known secret and credential-shaped token replaced by `[REDACTED]`."""
    if not text:
        return text
    for secret in _by_length:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _SCHEME.sub(_scheme_only, text)
    text = _NAMED.sub(rf"\1{REDACTED}", text)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}\3", text)
    return _SHAPES.sub(REDACTED, text)
