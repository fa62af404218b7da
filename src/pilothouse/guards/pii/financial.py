"""Payment card numbers (Luhn) and IBANs (ISO 13616 mod-97 and country length, via `python-stdnum`).

A card number is 13 to 19 digits, optionally grouped by single spaces or dashes, that passes the Luhn check
and starts with the issuer prefix of a card network; a Luhn-valid number with no known prefix is left alone
(one random digit string in ten passes Luhn). An IBAN is a country code, two check digits and the account,
written compact or in groups of four; it is kept when stdnum validates it, trying shorter groupings when a
following word was swallowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from stdnum import iban, luhn

from pilothouse.guards.scanner import Finding

_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_CARD_NETWORKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("visa", re.compile(r"4\d{12}(?:\d{3}){0,2}")),
    ("mastercard", re.compile(r"(?:5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}")),
    ("amex", re.compile(r"3[47]\d{13}")),
    ("discover", re.compile(r"(?:6011|65\d{2}|64[4-9]\d)\d{12,15}")),
    ("diners", re.compile(r"3(?:0[0-5]|[68]\d)\d{11,16}")),
    ("jcb", re.compile(r"35(?:2[89]|[3-8]\d)\d{12,15}")),
    ("unionpay", re.compile(r"62\d{14,17}")),
    ("maestro", re.compile(r"(?:5[06-9]|6\d)\d{10,17}")),
)
_DIGIT = re.compile(r"\d")
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![\w])")

CARD_SCORE = 0.95
IBAN_SCORE = 0.97


def card_network(digits: str) -> str | None:
    """The card network whose prefix and length `digits` match, or None."""
    for name, pattern in _CARD_NETWORKS:
        if pattern.fullmatch(digits):
            return name
    return None


def find_credit_cards(text: str) -> Iterator[Finding]:
    """Payment card numbers in `text`: a network's prefix and length, and the Luhn check digit."""
    if _DIGIT.search(text) is None:
        return
    for match in _CARD.finditer(text):
        raw = match.group()
        if " " in raw and "-" in raw:
            continue
        digits = re.sub(r"[ -]", "", raw)
        network = card_network(digits)
        if network is None or not luhn.is_valid(digits):
            continue
        yield Finding("CREDIT_CARD", match.start(), match.end(), CARD_SCORE, f"{network} card number (Luhn)")


def find_ibans(text: str) -> Iterator[Finding]:
    """IBANs in `text`, compact or grouped by spaces."""
    if _DIGIT.search(text) is None:
        return
    for match in _IBAN.finditer(text):
        candidate = match.group()
        while candidate:
            if iban.is_valid(candidate):
                start = match.start()
                yield Finding("IBAN_CODE", start, start + len(candidate), IBAN_SCORE, f"IBAN ({candidate[:2]})")
                break
            head, sep, _ = candidate.rpartition(" ")
            candidate = head if sep else ""
