"""Each PII entity type: found when valid, ignored when its checksum or format is wrong."""

from __future__ import annotations

import pytest

from pilothouse.guards.pii.scanner import ENTITIES, PiiScanner
from pilothouse.guards.scanner import ScanContext

CTX = ScanContext()


def kinds(text: str, **options: object) -> list[tuple[str, str]]:
    scanner = PiiScanner(ner="rules", **options)  # type: ignore[arg-type]
    return [(f.kind, text[f.start : f.end]) for f in scanner.scan(text, CTX).findings]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+tag@example.co.uk today", [("EMAIL_ADDRESS", "jane.doe+tag@example.co.uk")]),
        ("card 4539 9889 1572 0591 expires", [("CREDIT_CARD", "4539 9889 1572 0591")]),
        ("amex 3782-822463-10005", [("CREDIT_CARD", "3782-822463-10005")]),
        ("pay to DE89 3704 0044 0532 0130 00 please", [("IBAN_CODE", "DE89 3704 0044 0532 0130 00")]),
        ("IBAN GB82WEST12345698765432", [("IBAN_CODE", "GB82WEST12345698765432")]),
        ("His social security number is 531-21-7351", [("US_SSN", "531-21-7351")]),
        ("my SSN: 531217351", [("US_SSN", "531217351")]),
        ("NI number AB 12 34 56 C", [("UK_NINO", "AB 12 34 56 C")]),
        ("DNI 12345678Z", [("ES_NIF", "12345678Z")]),
        ("NIE X1234567L", [("ES_NIF", "X1234567L")]),
        ("numéro de sécurité sociale 2 95 10 99 126 111 93", [("FR_NIR", "2 95 10 99 126 111 93")]),
        ("Steuer-IdNr 36574261809", [("DE_TAX_ID", "36574261809")]),
        ("codice fiscale RCCMNL83S18D969H", [("IT_FISCAL_CODE", "RCCMNL83S18D969H")]),
        ("mijn BSN is 111222333", [("NL_BSN", "111222333")]),
        ("Aadhaar 2341 2341 2346", [("IN_AADHAAR", "2341 2341 2346")]),
        (
            "server at 192.168.10.4 and 2001:db8::8a2e:370:7334",
            [("IP_ADDRESS", "192.168.10.4"), ("IP_ADDRESS", "2001:db8::8a2e:370:7334")],
        ),
        ("call +44 20 7946 0958 tomorrow", [("PHONE_NUMBER", "+44 20 7946 0958")]),
        ("call (415) 555-2671 tomorrow", [("PHONE_NUMBER", "(415) 555-2671")]),
        ("Mr. Fernandez is 50", [("PERSON", "Fernandez")]),
        ("Follow up with Colleen Wiley in 2 months.", [("PERSON", "Colleen Wiley")]),
        ("My name is Patricia Jeknić", [("PERSON", "Patricia Jeknić")]),
        ("The restaurant is at 1755 Nelson Mandela Drive", [("STREET_ADDRESS", "1755 Nelson Mandela Drive")]),
        ("The bus station is on Ziegelgasse 26", [("STREET_ADDRESS", "Ziegelgasse 26")]),
        ("ZIP: 11164", [("STREET_ADDRESS", "11164")]),
        # no digit at all: the gates that skip digit-only rules must leave these be
        ("codice fiscale RCCMNLUPSMUDVSVO", [("IT_FISCAL_CODE", "RCCMNLUPSMUDVSVO")]),  # digits as letters
        ("She lives on Rue Abdelaziz Thâalbi now", [("STREET_ADDRESS", "Rue Abdelaziz Thâalbi now")]),
    ],
)
def test_valid_values_are_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "card 4539 9889 1572 0592 expires",  # Luhn fails
        "pay to DE89 3704 0044 0532 0130 01 please",  # mod 97 fails
        "His social security number is 666-21-7351",  # area 666 is never issued
        "His social security number is 531-00-7351",  # group 00 is never issued
        "NI number GB 12 34 56 C",  # GB is a prefix never issued
        "DNI 12345678A",  # wrong check letter
        "numéro de sécurité sociale 2 95 10 99 126 111 94",  # wrong key
        "Steuer-IdNr 36574261808",  # wrong check digit
        "codice fiscale RCCMNL83S18D969A",  # wrong check letter
        "mijn BSN is 111222334",  # elfproef fails
        "Aadhaar 2341 2341 2347",  # Verhoeff fails
        "reference 111222333 without the word",  # a valid BSN needs a naming word before it
        "version 999.1.1.1 and 1.2.3",
        "email me at jane..doe@example",
        "Capitalized words like Wisdom and Discipline are often mistaken with names.",
        "I have 3 apples in the way",
    ],
)
def test_invalid_values_are_not_found(text: str) -> None:
    assert kinds(text) == []


def test_checksum_decides_between_two_similar_numbers() -> None:
    valid, invalid = "Please charge card 4716952653167634", "Please charge card 4716952653167635"
    assert [k for k, _ in kinds(valid)] == ["CREDIT_CARD"]
    assert kinds(invalid) == []


def test_default_region_reads_national_numbers() -> None:
    text = "ring me on 030 901820 tonight"
    assert kinds(text, default_region="DE", entities=["PHONE_NUMBER"]) == [("PHONE_NUMBER", "030 901820")]


def test_entities_option_limits_the_search() -> None:
    text = "mail a@b.io, card 4539988915720591"
    assert kinds(text, entities=["CREDIT_CARD"]) == [("CREDIT_CARD", "4539988915720591")]


def test_overlapping_detections_keep_the_most_confident() -> None:
    found = kinds("His social security number is 531-21-7351")
    assert found == [("US_SSN", "531-21-7351")]  # not also a phone number


@pytest.mark.parametrize(
    "options",
    [
        {"entities": ["NOPE"]},
        {"entities": []},
        {"entities": "EMAIL_ADDRESS"},
        {"default_region": "XX"},
        {"how": "shred"},
        {"phone_leniency": "loose"},
        {"ner": "bert"},
    ],
)
def test_bad_options_are_value_errors(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PiiScanner(**options)  # type: ignore[arg-type]


def test_every_entity_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "guards-pii.md").read_text()
    assert [e for e in ENTITIES if f"`{e}`" not in doc] == []
