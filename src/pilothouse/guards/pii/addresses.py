"""Street addresses by rules (no offline model recognises them well; spaCy's English pipeline has no
address label).

Found: a house number with a street name ending in a street type (`1755 Nelson Mandela Drive`,
`27 2279 President St`), a street name with a continental suffix and a number (`Ziegelgasse 26`,
`Kapelaniestraat 88`, `árpád fejedelem útja 45`), a street type before the name with a number on either
side (`107 Rue Abdelaziz Thâalbi`, `Via Roma 12`), each with an apartment or suite that follows; a lone
`Apt. 614`; and a postal code after `ZIP:` or `postcode`. Not found: an address without a house number
(`Whittaker Street`), city and country lines, PO boxes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from pilothouse.guards.scanner import Finding

_NAME_WORD = r"[^\W\d_][^\W\d_'\u2019.-]*\.?"
_UNIT = r"(?:,?\s{0,3}(?:Apt|Apartment|Suite|Ste|Unit|Flat)\.?\s{0,2}#?\s?\d+[A-Za-z]?)?"
_HOUSE = r"\d{1,6}[A-Za-z]?(?:[ -]\d{1,6}[A-Za-z]?)?"
_TYPE_AFTER = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Drive|Dr|Lane|Ln|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Square|Sq"
    r"|Highway|Hwy|Parkway|Pkwy|Circle|Cir|Crescent|Close|Gardens|Row|Walk|Alley|Trail|Plaza|Mews|Hill)\b\.?"
)
_TYPE_BEFORE = (
    r"(?:Rue|Rua|Via|Viale|Calle|Avenida|Avinguda|Av\.|Piazza|Plaza|Praça|Plac|Place|Boulevard|Chemin|Carrer|Corso"
    r"|Largo|Ulica|ul\.|Πλατεία|Οδός|Leoforos)"
)
_SUFFIXES = (
    r"(?:strasse|straße|str\.|gasse|weg|allee|platz|damm|straat|laan|gracht|plein|steeg|kade|vej"
    r"|gade|gatan|vägen|veien|gata|katu|utca|útja|tér|ulice|náměstí|gürtel)"
)
_SUFFIXED = rf"[^\W\d_]*{_SUFFIXES}"

_PATTERNS: tuple[tuple[re.Pattern[str], float, str], ...] = (
    (
        re.compile(rf"(?<![\w-]){_HOUSE}\s+(?:{_NAME_WORD}\s+){{0,3}}{_TYPE_AFTER}{_UNIT}"),
        0.7,
        "house number and street type",
    ),
    (
        re.compile(
            rf"(?<![\w-])(?:{_HOUSE}\s+(?:{_NAME_WORD}\s+){{0,2}})?(?<![\w-]){_SUFFIXED}\s+\d{{1,5}}[A-Za-z]?\.?(?!\d){_UNIT}",
            re.IGNORECASE,
        ),
        0.7,
        "street name and number",
    ),
    (
        re.compile(
            rf"(?<![\w-])(?:{_HOUSE}\s+)?{_TYPE_BEFORE} +(?:{_NAME_WORD} ?){{1,4}}(?: ?\d{{1,5}}[A-Za-z]?)?{_UNIT}"
        ),
        0.65,
        "street type and name",
    ),
    (re.compile(r"(?<!\w)(?:Apt|Apartment|Suite|Unit)\.?\s{0,2}#?\s?\d+[A-Za-z]?(?!\w)", re.IGNORECASE), 0.5, "unit"),
    (
        re.compile(r"(?<![\w-])\d{5}(?:-\d{4})?(?![\w-])"),
        0.6,
        "postal code",
    ),
)

_DIGIT = re.compile(r"\d")
_SPACED_NUMBER = re.compile(r"(?<!\s)\s+\d")  # from where a run of spaces starts: linear on long runs
_ENDS_WITH_SUFFIX = re.compile(rf"{_SUFFIXES}\Z", re.IGNORECASE)
_TYPE_THEN_SPACE = re.compile(rf"{_TYPE_BEFORE} ")
_LONGEST_SUFFIX = 12


def _suffix_before_number(text: str) -> bool:
    """Whether a street suffix is followed by spaces and a digit somewhere in `text` (pattern 2 cannot match
    without): a search at each spaced number, which is much cheaper than a case-insensitive alternation tried
    at every position."""
    for match in _SPACED_NUMBER.finditer(text):
        start = match.start()
        if _ENDS_WITH_SUFFIX.search(text, max(0, start - _LONGEST_SUFFIX), start):
            return True
    return False


def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


def _type_then_space(text: str) -> bool:
    return _TYPE_THEN_SPACE.search(text) is not None


_GATES: tuple[tuple[bool, Callable[[str], bool] | None], ...] = (
    (True, None),
    (True, _suffix_before_number),
    (False, _type_then_space),
    (True, None),
    (True, None),
)
"""What each of _PATTERNS cannot match without, checked first (cheaper than the pattern's scan, which tries
every position): (a digit, and then) a street suffix followed by a number, or a street type followed by a
space."""

ADDRESS_KIND = "STREET_ADDRESS"
_POSTAL_CUE = re.compile(r"\b(?:zip|zip code|postcode|postal code)\s*:?\s*$", re.IGNORECASE)


def find_street_addresses(text: str) -> Iterator[Finding]:
    """Street addresses in `text` (overlapping matches of different patterns are merged by the scanner)."""
    digit = _has_digit(text)  # what most gates need: looked for once
    for (pattern, score, why), (needs_digit, gate) in zip(_PATTERNS, _GATES, strict=True):
        if (needs_digit and not digit) or (gate is not None and not gate(text)):
            continue
        for match in pattern.finditer(text):
            start, end = match.start(), match.end()
            if why == "postal code" and not _POSTAL_CUE.search(text[max(0, start - 16) : start]):
                continue
            while end > start and (text[end - 1].isspace() or text[end - 1] == ","):
                end -= 1
            if end > start:
                yield Finding(ADDRESS_KIND, start, end, score, f"street address ({why})")
