"""Contact details: email addresses and phone numbers.

Emails are found by a practical pattern (the common subset of RFC 5322 that mail systems accept: no quoted
local parts, no IP-literal domains) and kept when the local part has no empty dot-atoms and the whole address
fits in 254 characters. Phone numbers are found and validated by `phonenumbers` (Google's libphonenumber
metadata): a number written with `+` or `00` is checked against its own country's plan; one without is read
in `default_region`'s national format.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from pilothouse.guards.scanner import Finding

_EMAIL = re.compile(
    r"(?<![\w.%+-])"
    r"[A-Za-z0-9_%+-](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?![\w-])"
)

EMAIL_SCORE = 0.95
PHONE_SCORE = 0.8
"""A number libphonenumber calls valid for its region; the digits could still be an order or account number."""

LENIENCIES: dict[str, int] = {
    "possible": phonenumbers.Leniency.POSSIBLE,
    "valid": phonenumbers.Leniency.VALID,
    "strict_grouping": phonenumbers.Leniency.STRICT_GROUPING,
}
"""How strict phone matching is (libphonenumber's leniency levels): `possible` only checks the length for the
region, `valid` also checks the number ranges that are in use, `strict_grouping` also the digit grouping."""


_DIGIT = re.compile(r"\d")


def find_emails(text: str) -> Iterator[Finding]:
    """Email addresses in `text`."""
    if "@" not in text:  # the pattern's one literal: most texts have none, and the scan is skipped
        return
    for match in _EMAIL.finditer(text):
        local = match.group().partition("@")[0]
        if ".." in local or len(match.group()) > 254:
            continue
        yield Finding("EMAIL_ADDRESS", match.start(), match.end(), EMAIL_SCORE, "email address")


def find_phone_numbers(text: str, region: str = "US", leniency: str = "valid") -> Iterator[Finding]:
    """Phone numbers in `text`, national ones read as numbers of `region` (ISO 3166 code, `GB`, `DE`)."""
    if _DIGIT.search(text) is None:  # libphonenumber's matcher only starts at a (Unicode) digit
        return
    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=LENIENCIES[leniency])
    for match in matcher:
        country = phonenumbers.region_code_for_number(match.number) or "unknown region"
        yield Finding("PHONE_NUMBER", match.start, match.end, PHONE_SCORE, f"phone number ({country})")
