"""Prompt references: `NAME`, `NAME@3`, `NAME@production`, `NAME@sha:abc123`, and `prompt:REF` as a model.

A bare name means its `production` label. Versions are numbered per prompt from 1 to `MAX_VERSION`; a `sha:`
reference is a prefix (at least 6 hex digits) of a version's content hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME_PATTERN = r"[a-z0-9][a-z0-9._-]*"
NAME_RE = re.compile(rf"^{NAME_PATTERN}$")
LABEL_RE = re.compile(r"^[a-z][a-z0-9._-]*$")
SHA_RE = re.compile(r"^[0-9a-f]{6,64}$")
NAME_MAX = 200
LABEL_MAX = 100
MODEL_PREFIX = "prompt:"
DEFAULT_LABEL = "production"
LATEST_LABEL = "latest"
MAX_VERSION = 2**31 - 1
"""The largest version number: versions are stored in a 32-bit INTEGER column. The API's path, query and body
declarations and the reference parser all use this bound, so a larger number is a 4xx, never a database error."""


@dataclass(frozen=True)
class PromptRef:
    """One way of naming a version: exactly one of `version`, `label` or `sha` is set."""

    name: str
    version: int | None = None
    label: str | None = None
    sha: str | None = None

    @property
    def selector(self) -> str:
        """What follows the `@`: `3`, `production` or `sha:abc123`."""
        if self.version is not None:
            return str(self.version)
        if self.sha is not None:
            return f"sha:{self.sha}"
        return self.label or DEFAULT_LABEL

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def check_name(name: str) -> str:
    """Return `name` if it is a valid prompt name; ValueError saying why not otherwise."""
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > NAME_MAX:
        raise ValueError(
            f"invalid prompt name {name!r}: use lowercase letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit (at most {NAME_MAX} characters)"
        )
    return name


def check_label(label: str) -> str:
    """Return `label` if it is a valid label name (not a number, not `sha:`); ValueError otherwise."""
    if not isinstance(label, str) or not LABEL_RE.match(label) or len(label) > LABEL_MAX:
        raise ValueError(
            f"invalid label {label!r}: use lowercase letters, digits, '.', '_' and '-', starting with a letter "
            f"(at most {LABEL_MAX} characters), e.g. 'production' or 'staging'"
        )
    return label


def parse_selector(name: str, selector: str) -> PromptRef:
    """The reference to `name` at `selector` (`3`, `production`, `sha:abc123`)."""
    check_name(name)
    if selector.isascii() and selector.isdigit():
        if len(selector) > len(str(MAX_VERSION)) or not 1 <= int(selector) <= MAX_VERSION:
            raise ValueError(f"invalid version in {name}@{selector}: versions are numbered from 1 to {MAX_VERSION}")
        return PromptRef(name, version=int(selector))
    if selector.startswith("sha:"):
        sha = selector[4:].lower()
        if not SHA_RE.match(sha):
            raise ValueError(
                f"invalid content hash in {name}@{selector}: give at least 6 hex digits of the hash, e.g. sha:3f9c1a"
            )
        return PromptRef(name, sha=sha)
    try:
        return PromptRef(name, label=check_label(selector))
    except ValueError as exc:
        raise ValueError(f"invalid reference {name}@{selector}: {exc}") from None


def parse_ref(text: str) -> PromptRef:
    """Parse `NAME`, `NAME@3`, `NAME@production` or `NAME@sha:abc123`; ValueError with the reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty prompt reference: expected NAME, NAME@VERSION, NAME@LABEL or NAME@sha:HASH")
    name, sep, selector = text.strip().partition("@")
    if sep and not selector:
        raise ValueError(f"invalid reference {text!r}: nothing after '@' (a version, a label or sha:HASH)")
    return parse_selector(name, selector if sep else DEFAULT_LABEL)


def parse_model_ref(model: str) -> PromptRef | None:
    """The prompt reference in a gateway `model` field (`prompt:NAME@LABEL`), or None for a plain model."""
    if not model.startswith(MODEL_PREFIX):
        return None
    return parse_ref(model[len(MODEL_PREFIX) :])
