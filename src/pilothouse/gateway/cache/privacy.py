"""What the response caches keep of a project's content, by its content capture mode (tracing/capture.py).

- `full`: the answer as returned; the question's vector and text in the semantic index (the contrast checks
  compare texts);
- `redacted`: as `full` when the PII and secrets scanners find nothing in the question and the answer; else as
  `off` for that request;
- `off`: the answer sealed; nothing in the semantic index (the request is cached exactly only).

A **sealed** entry is the answer encrypted with AES-256-GCM under a key derived from the request itself
(`keys.exact_key_material`: a SHA-256 of the canonical request in another domain than the entry's lookup key),
so the store holds neither the question (the lookup key is a one-way hash) nor a readable answer: only a request
that is the same question can open it. As for the key, a short question can be found again by trying
candidates against the hash; this keeps content out of cache files, dumps and Redis replicas, it is not a
defence against someone who can guess the question. The semantic cache needs the earlier question's words to
compare a new question with (numbers, names, negations), so a request whose question may not be kept is not
added to it, and a project with capture `off` makes no semantic lookups.

`CaptureModes` reads each project's mode through `ContentCapture` (one small query at most once a
`capture.MODES_TTL_S` per process, and again at once after a change made through this process).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pilothouse.guards.scanner import ScanContext, Scanner
from pilothouse.store.engine import Store
from pilothouse.tracing.capture import CaptureMode, ContentCapture, capture_mode_of

log = logging.getLogger("pilothouse.cache")

SEALED = b"PHSEAL1:"
"""The prefix of a sealed entry (then a 12-byte nonce and the AES-GCM ciphertext with its tag)."""
_NONCE_BYTES = 12
_CLEAN_CTX = ScanContext(role="user", direction="input")


def seal(raw: bytes, key: bytes) -> bytes:
    """`raw` encrypted under `key` (32 bytes), with a fresh random nonce."""
    nonce = os.urandom(_NONCE_BYTES)
    return SEALED + nonce + AESGCM(key).encrypt(nonce, raw, SEALED)


def is_sealed(raw: bytes) -> bool:
    return raw.startswith(SEALED)


def unseal(raw: bytes, key: bytes) -> bytes | None:
    """The plain entry of a sealed one, or None when `key` does not open it (another request's entry)."""
    body = raw[len(SEALED) :]
    if len(body) <= _NONCE_BYTES:
        return None
    try:
        return AESGCM(key).decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], SEALED)
    except InvalidTag:
        return None


class CaptureModes:
    """Each project's content capture mode, for the cache (`full` for all when there is no store to read;
    `off` for all when `capture_content` is off). A store that cannot be read counts as `off`: the cache then
    keeps nothing readable rather than content a project may have asked to keep out."""

    def __init__(self, database: Store | None, *, capture_content: bool = True) -> None:
        self._capture = None if database is None else ContentCapture(database)
        self._off = not capture_content
        self._scanners: tuple[Scanner, ...] | None = None

    def mode(self, project_id: str) -> CaptureMode:
        """The project's mode. `ContentCapture.modes` answers from memory, reading the store at most once a
        `capture.MODES_TTL_S` (one small query) and at once after a change made through this process."""
        if self._off:
            return "off"
        if self._capture is None:
            return "full"
        try:
            found = self._capture.modes((project_id,))
        except Exception as exc:
            log.warning(
                "cache: could not read the content capture of project %s (keeping nothing): %s", project_id, exc
            )
            return "off"
        return capture_mode_of(found.get(project_id, "full"))

    def clean(self, texts: Sequence[str]) -> bool:
        """Whether the PII and secrets scanners find nothing in any of `texts` (CPU work: call it in a thread)."""
        if self._scanners is None:
            from pilothouse.guards.registry import build_scanner

            self._scanners = (build_scanner("pii", {}), build_scanner("secrets", {}))
        return not any(s.scan(text, _CLEAN_CTX).findings for text in texts if text for s in self._scanners)
