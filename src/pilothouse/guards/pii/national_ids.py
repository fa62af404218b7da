"""National identity and tax numbers, each checked by its own rules (`python-stdnum` where it has them).

| entity | number | check |
|---|---|---|
| US_SSN | US Social Security number | area, group and serial rules (no area 000, 666 or 9xx; no group 00) |
| UK_NINO | UK National Insurance number | format and the prefixes HMRC never issues (no check digit exists) |
| ES_NIF | Spanish DNI / NIE | the check letter (mod 23) |
| FR_NIR | French social security number (NIR) | the two-digit key (mod 97) |
| DE_TAX_ID | German tax id (Steuerliche IdNr) | ISO 7064 mod 11,10 and its digit-repetition rule |
| IT_FISCAL_CODE | Italian codice fiscale | the check letter, the birth date and place codes |
| NL_BSN | Dutch citizen service number | the "elfproef" (weighted mod 11) |
| IN_AADHAAR | Indian Aadhaar number | Verhoeff check digit |

A check digit that one random number in ten or eleven passes is weak evidence on its own, so a bare 9 to 12
digit number (SSN without dashes, BSN, tax id, Aadhaar) is only reported when a word naming the number
(`ssn`, `bsn`, `steuer`, `aadhaar`, ...) appears within a few words before it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn

from pilothouse.guards.scanner import Finding

CONTEXT_CHARS = 48
"""How far before a number a naming word is looked for."""

_NINO_NEVER_ISSUED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _nino_is_valid(number: str) -> bool:
    compact = re.sub(r"\s", "", number).upper()
    return compact[:2] not in _NINO_NEVER_ISSUED


@dataclass(frozen=True, slots=True)
class IdRule:
    """One way of writing one kind of number: a candidate pattern, its validator, and whether it needs a
    naming word before it to count."""

    kind: str
    pattern: re.Pattern[str]
    is_valid: Callable[[str], bool]
    score: float
    context: tuple[str, ...] = ()
    """When not empty, one of these words (lower case) must appear within CONTEXT_CHARS before the number."""
    label: str = ""


_SSN_WORDS = ("ssn", "social security", "social sec", "ss#", "ss #")
RULES: tuple[IdRule, ...] = (
    IdRule("US_SSN", re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"), ssn.is_valid, 0.85, label="US SSN"),
    IdRule("US_SSN", re.compile(r"(?<![\w-])\d{3} \d{2} \d{4}(?![\w-])"), ssn.is_valid, 0.85, _SSN_WORDS, "US SSN"),
    IdRule("US_SSN", re.compile(r"(?<![\w-])\d{9}(?![\w-])"), ssn.is_valid, 0.8, _SSN_WORDS, "US SSN"),
    IdRule(
        "UK_NINO",
        re.compile(r"(?<!\w)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)"),
        _nino_is_valid,
        0.75,
        label="UK National Insurance number",
    ),
    IdRule("ES_NIF", re.compile(r"(?<![\w-])\d{8}-?[A-Z](?!\w)"), dni.is_valid, 0.9, label="Spanish DNI"),
    IdRule("ES_NIF", re.compile(r"(?<![\w-])[XYZ]-?\d{7}-?[A-Z](?!\w)"), nie.is_valid, 0.9, label="Spanish NIE"),
    IdRule(
        "FR_NIR",
        re.compile(r"(?<![\w-])[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\w)"),
        nir.is_valid,
        0.9,
        label="French NIR",
    ),
    IdRule(
        "DE_TAX_ID",
        re.compile(r"(?<![\w-])\d{2} ?\d{3} ?\d{3} ?\d{3}(?![\w-])"),
        idnr.is_valid,
        0.85,
        ("steuer", "idnr", "identifikationsnummer", "tax id", "tin"),
        "German tax id",
    ),
    IdRule(
        "IT_FISCAL_CODE",
        re.compile(
            r"(?<!\w)[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z](?!\w)"
        ),
        codicefiscale.is_valid,
        0.95,
        label="Italian codice fiscale",
    ),
    IdRule(
        "NL_BSN",
        re.compile(r"(?<![\w-])\d{4}\.?\d{2}\.?\d{3}(?![\w-])"),
        bsn.is_valid,
        0.85,
        ("bsn", "burgerservicenummer", "sofinummer", "sofi-nummer"),
        "Dutch BSN",
    ),
    IdRule(
        "IN_AADHAAR",
        re.compile(r"(?<![\w-])[2-9]\d{3} ?\d{4} ?\d{4}(?![\w-])"),
        aadhaar.is_valid,
        0.85,
        ("aadhaar", "aadhar", "uidai", "uid"),
        "Aadhaar number",
    ),
)

ID_KINDS: tuple[str, ...] = tuple(dict.fromkeys(rule.kind for rule in RULES))


def _has_context(text: str, start: int, words: tuple[str, ...]) -> bool:
    before = text[max(0, start - CONTEXT_CHARS) : start].lower()
    return any(re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", before) for word in words)


_DIGIT = re.compile(r"\d")
_SIX_CAPITALS = re.compile(r"[A-Z]{6}")
"""The codice fiscale starts with six capital letters: a text without such a run is not searched for it (the
search is several times cheaper than the pattern, whose look-behind is tried at every position)."""


def _needs_digit(rule: IdRule) -> bool:
    """Every pattern but the codice fiscale's needs a digit (its digits may all be written as letters)."""
    return rule.kind != "IT_FISCAL_CODE"


_PLANS: dict[frozenset[str] | None, tuple[tuple[IdRule, ...], tuple[IdRule, ...]]] = {}
"""The rules of a `kinds` selection, in RULES order: all of them, and those a text without digits can match."""


def _plan(kinds: frozenset[str] | None) -> tuple[tuple[IdRule, ...], tuple[IdRule, ...]]:
    plan = _PLANS.get(kinds)
    if plan is None:
        chosen = tuple(rule for rule in RULES if kinds is None or rule.kind in kinds)
        plan = _PLANS[kinds] = (chosen, tuple(rule for rule in chosen if not _needs_digit(rule)))
    return plan


def find_national_ids(text: str, kinds: frozenset[str] | None = None) -> Iterator[Finding]:
    """National ids in `text`; `kinds` limits the search to some of ID_KINDS."""
    every, digitless = _plan(kinds)
    for rule in every if _DIGIT.search(text) is not None else digitless:
        if rule.kind == "IT_FISCAL_CODE" and _SIX_CAPITALS.search(text) is None:
            continue
        for match in rule.pattern.finditer(text):
            if rule.context and not _has_context(text, match.start(), rule.context):
                continue
            if not rule.is_valid(match.group()):
                continue
            yield Finding(rule.kind, match.start(), match.end(), rule.score, f"{rule.label} (checksum)")
