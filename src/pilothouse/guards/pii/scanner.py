"""The `pii` scanner: finds personal data by entity type and returns it with a redacted text.

Options (all optional): `entities` (a subset of ENTITIES; default all), `default_region` (how phone numbers
written without a country code are read; ISO 3166 code, default `US`), `how` (`mask`, `hash` or `drop`:
see `redaction.py`), `salt` (the key of `hash` redaction), `phone_leniency` (`possible`, `valid`,
`strict_grouping`; default `possible`, chosen on the dev split), and `ner` (`rules`, the default: the rules
only; `auto`: person names from the rules plus spaCy's NER when it is installed; `spacy`: require spaCy).
NER is off by default because it costs ~55 ms per 512 tokens (docs/guards-pii.md).

Where two findings overlap, the more confident one wins (an SSN is not also reported as a phone number);
overlapping findings of one kind are merged into one span.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

import phonenumbers

from pilothouse.guards.pii import ner
from pilothouse.guards.pii.addresses import find_street_addresses
from pilothouse.guards.pii.contact import LENIENCIES, find_emails, find_phone_numbers
from pilothouse.guards.pii.financial import find_credit_cards, find_ibans
from pilothouse.guards.pii.names import find_persons_rules
from pilothouse.guards.pii.national_ids import ID_KINDS, find_national_ids
from pilothouse.guards.pii.network import find_ip_addresses
from pilothouse.guards.pii.redaction import HOW_CHOICES, redact
from pilothouse.guards.scanner import Finding, ScanContext, Verdict, clean_verdict

ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    *ID_KINDS,
    "IP_ADDRESS",
    "PERSON",
    "STREET_ADDRESS",
)
NER_CHOICES = ("auto", "spacy", "rules")

Detector = Callable[[str], Iterable[Finding]]


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Findings with no two overlapping, in text order: one kind's overlapping findings are merged (keeping
    the best score), then across kinds the more confident (then longer) finding wins."""
    by_kind: dict[str, list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: (f.kind, f.start, -f.end)):
        same = by_kind.setdefault(finding.kind, [])
        if same and finding.start < same[-1].end:
            last = same[-1]
            best = last if last.score >= finding.score else finding
            same[-1] = Finding(last.kind, last.start, max(last.end, finding.end), best.score, best.detail)
        else:
            same.append(finding)
    ranked = sorted(
        (f for group in by_kind.values() for f in group), key=lambda f: (-f.score, f.start - f.end, f.start)
    )
    kept: list[Finding] = []
    for finding in ranked:
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


class PiiScanner:
    """Personal data in a text: contact details, payment and bank numbers, national ids, IP addresses,
    person names and street addresses (see docs/guards-pii.md for how each is validated)."""

    name: ClassVar[str] = "pii"
    redacts: ClassVar[bool] = True

    def __init__(
        self,
        *,
        entities: Sequence[str] | None = None,
        default_region: str = "US",
        how: str = "mask",
        salt: str = "",
        phone_leniency: str = "possible",
        ner: str = "rules",
    ) -> None:
        chosen = tuple(ENTITIES if entities is None else entities)
        if isinstance(entities, str) or not chosen:
            raise ValueError("entities must be a non-empty list of entity names")
        unknown = sorted(set(chosen) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown entities {unknown}: known are {', '.join(ENTITIES)}")
        region = str(default_region).upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"default_region {default_region!r} is not a region code phonenumbers knows")
        if how not in HOW_CHOICES:
            raise ValueError(f"how must be one of {', '.join(HOW_CHOICES)}")
        if not isinstance(salt, str):
            raise ValueError("salt must be a string")
        if phone_leniency not in LENIENCIES:
            raise ValueError(f"phone_leniency must be one of {', '.join(LENIENCIES)}")
        if ner not in NER_CHOICES:
            raise ValueError(f"ner must be one of {', '.join(NER_CHOICES)}")
        if ner == "spacy" and not _ner_available():
            raise ValueError("ner='spacy' needs spaCy and an English model: pip install 'pilothouse[pii-ner]'")
        self.entities = frozenset(chosen)
        self.default_region = region
        self.how = how
        self.salt = salt
        self.phone_leniency = phone_leniency
        self.uses_ner = "PERSON" in self.entities and ner != "rules" and _ner_available()
        self._detectors = self._build_detectors()

    def _build_detectors(self) -> list[Detector]:
        wanted = self.entities
        detectors: list[Detector] = []
        if "EMAIL_ADDRESS" in wanted:
            detectors.append(find_emails)
        if "PHONE_NUMBER" in wanted:
            region, leniency = self.default_region, self.phone_leniency
            detectors.append(lambda text: find_phone_numbers(text, region, leniency))
        if "CREDIT_CARD" in wanted:
            detectors.append(find_credit_cards)
        if "IBAN_CODE" in wanted:
            detectors.append(find_ibans)
        id_kinds = frozenset(wanted & set(ID_KINDS))
        if id_kinds:
            detectors.append(lambda text: find_national_ids(text, id_kinds))
        if "IP_ADDRESS" in wanted:
            detectors.append(find_ip_addresses)
        if "PERSON" in wanted:
            detectors.append(find_persons_rules)
            if self.uses_ner:
                detectors.append(ner.find_persons_ner)
        if "STREET_ADDRESS" in wanted:
            detectors.append(find_street_addresses)
        return detectors

    def find(self, text: str) -> list[Finding]:
        """The findings in `text`, without overlaps, in text order."""
        found = [finding for detect in self._detectors for finding in detect(text)]
        return resolve_overlaps(found) if found else found

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


def _ner_available() -> bool:
    return ner.available()
