"""Finding encoded payloads and decoding them, so the decoded text can be scanned like any other.

Attackers hide instructions from keyword filters by encoding them: base64, hex, rot13, leetspeak, or letters
spaced out ("i g n o r e"). `encoded_segments(text)` finds base64 and hex runs that decode to readable
text, and spaced-out words; `rot13` and `unleet` are one-to-one character maps, so a pattern found in the
mapped text has the same span in the original.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

__all__ = ["Encoded", "encoded_segments", "readable", "rot13", "unleet"]

_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9_-]{4}){4,}(?:[A-Za-z0-9+/_-]{2,3}={0,2}|=)?")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:(?:0x|\\x)?[0-9A-Fa-f]{2}[\s:,]?){8,}(?![0-9A-Za-z])")
_SPACED = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][ .\-_*|/]{1,2})+[^\W\d_](?![^\W\d_])")
_SEPARATORS = re.compile(r"[ .\-_*|/]")
_HEX_NOISE = re.compile(r"0x|\\x|[\s:,]")
_WORDS = re.compile(r"[A-Za-z]{2,}")

MAX_PAYLOADS = 32
"""At most this many encoded runs are decoded per text (a bound on work for hostile inputs)."""

_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One encoded run: where it is in the scanned text, its encoding, and what it decodes to."""

    start: int
    end: int
    encoding: str
    decoded: str


def rot13(text: str) -> str:
    """ROT13 of the ASCII letters (same length, same offsets)."""
    return text.translate(_ROT13)


def unleet(text: str) -> str:
    """Common leetspeak digits and symbols read as letters (same length, same offsets)."""
    return text.translate(_LEET)


def readable(decoded: str) -> bool:
    """Whether decoded bytes look like natural-language text: printable, with several words."""
    if not decoded or not all(c.isprintable() or c in "\n\r\t" for c in decoded):
        return False
    letters = sum(c.isalpha() for c in decoded)
    return letters >= 0.6 * len(decoded.replace(" ", "")) and len(_WORDS.findall(decoded)) >= 2


def _text_of(raw: bytes) -> str | None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if readable(decoded) else None


def _base64(run: str) -> str | None:
    if run.isalpha() or run.isdigit():  # a long word or number, not an encoding
        return None
    padded = run + "=" * (-len(run) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded) if ("-" in run or "_" in run) else base64.b64decode(padded)
    except (binascii.Error, ValueError):
        return None
    return _text_of(raw)


def _hex(run: str) -> str | None:
    digits = _HEX_NOISE.sub("", run)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return _text_of(bytes.fromhex(digits))
    except ValueError:
        return None


def encoded_segments(text: str) -> list[Encoded]:
    """Base64 and hex runs that decode to readable text, and spaced-out words joined up, in text order."""
    found: list[Encoded] = []
    for match in _HEX.finditer(text):
        decoded = _hex(match.group())
        if decoded is not None:
            found.append(Encoded(match.start(), match.end(), "hex", decoded))
        if len(found) >= MAX_PAYLOADS:
            return found
    for match in _BASE64.finditer(text):
        if any(e.start <= match.start() < e.end for e in found):
            continue
        decoded = _base64(match.group())
        if decoded is not None:
            found.append(Encoded(match.start(), match.end(), "base64", decoded))
        if len(found) >= MAX_PAYLOADS:
            return found
    found.extend(_spaced_out(text, MAX_PAYLOADS - len(found)))
    return sorted(found, key=lambda e: e.start)


def _spaced_out(text: str, limit: int) -> list[Encoded]:
    """Letters spaced out one by one, joined into words; neighbouring runs (one phrase) become one."""
    runs: list[Encoded] = []
    for match in _SPACED.finditer(text):
        word = _SEPARATORS.sub("", match.group())
        previous = runs[-1] if runs else None
        if previous is not None and not text[previous.end : match.start()].strip():
            runs[-1] = Encoded(previous.start, match.end(), "spaced", f"{previous.decoded} {word}")
        elif len(runs) < limit:
            runs.append(Encoded(match.start(), match.end(), "spaced", word))
        else:
            break
    return [run for run in runs if sum(c.isalpha() for c in run.decoded) >= 5]
