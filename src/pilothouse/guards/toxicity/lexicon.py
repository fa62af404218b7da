"""The lexical layer of the toxicity scanner: word lists and phrasing patterns.

The word lists are deliberately short. They are used two ways: as features of the learned classifier (so it
learns how much an insult word means next to the sentence's embedding), and directly, for the cases a
classifier trained on a few hundred statements cannot be relied on: slurs, and insults aimed at the reader
("you are a worthless idiot"). Profanity on its own is not flagged ("this damn printer"); it only adds
weight. Words with common innocent senses ("chinks in the armour", "dykes" holding back the sea, "fags" as
cigarettes) are left out of the slur list on purpose; the classifier, not the lexicon, has to judge those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PROFANITY = r"fuck\w*|shit\w*|bitch\w*|bastards?|assholes?|arseholes?|cunts?|dickheads?|motherfuck\w*|piss(?:ed)?|crap"
_INSULT = (
    r"idiots?|idiotic|morons?|moronic|stupid|dumb|imbeciles?|losers?|pathetic|worthless|trash|garbage|scum"
    r"|pigs?|disgusting|cretins?|freaks?|lunatics?|creeps?|slobs?|perverts?|sheep|senile|useless|ugly|filth|retarded"
)
_DEHUMANISING = (
    r"vermin|parasites?|subhumans?|sub-humans?|cockroach(?:es)?|rats|savages?|infestation|plague|animals"
    r"|breed(?:s|ing)?|lice|filth|diseased?"
)
_SLUR = r"n[i1!]gg(?:er|a)s?|f[a@]gg?ots?|tr[a@]nn(?:y|ies)|k[i1]kes?|wetbacks?|ragheads?|towelheads?|retards?|gooks?"

PROFANITY = re.compile(rf"\b(?:{_PROFANITY})\b", re.IGNORECASE)
INSULT = re.compile(rf"\b(?:{_INSULT})\b", re.IGNORECASE)
DEHUMANISING = re.compile(rf"\b(?:{_DEHUMANISING})\b", re.IGNORECASE)
SLUR = re.compile(rf"\b(?:{_SLUR})\b", re.IGNORECASE)

DIRECTED_INSULT = re.compile(
    rf"\b(?:you(?:'re|\s+are|\s+r)?|ur|u\s+r)\s+(?:(?:such|so|a|an|the|just|nothing\s+but|really|fucking|"
    rf"complete|total|little|big|stupid|ugly|pathetic|worthless)\s+){{0,3}}(?:{_INSULT}|{_PROFANITY}|{_SLUR})\b"
    rf"|\b(?:shut\s+up|go\s+(?:kill|hang)\s+yourself|kys|i\s+hope\s+you\s+die)\b",
    re.IGNORECASE,
)
"""An insult or threat aimed at the reader."""

GENERALISATION = re.compile(
    r"\b(?:all|every|most|those|these|such)\s+(?:\w+\s+){0,2}(?:are|is|should|can't|cannot|never|always|will)\b"
    r"|\b\w+\s+are\s+(?:all|just|always|never|nothing\s+but|only\s+good|too|less|so)\b"
    r"|\bby\s+nature\b",
    re.IGNORECASE,
)
"""A claim about a whole group ("all X are", "X are always", "by nature")."""

EXCLUSION = re.compile(
    r"\b(?:should(?:n't|\s+not)?\s+(?:be\s+(?:allowed|banned|locked|kept|sent|given)|have\s+(?:the\s+)?rights?"
    r"|stay|die|vote)|go\s+back\s+to|sent\s+back|get\s+rid\s+of|wiped\s+out|keep\s+\w+(?:\s+\w+)?\s+(?:out|away|locked)"
    r"|belong\s+in|don'?t\s+hire|not\s+to\s+hire|never\s+(?:hire|rent|trust)|can'?t\s+(?:be\s+)?trust(?:ed)?"
    r"|waste\s+(?:of|to))\b",
    re.IGNORECASE,
)
"""Excluding or denying a group ("should not be allowed", "go back to", "don't hire")."""

FEATURES = (
    ("profanity", PROFANITY),
    ("insult", INSULT),
    ("dehumanising", DEHUMANISING),
    ("slur", SLUR),
    ("directed_insult", DIRECTED_INSULT),
    ("generalisation", GENERALISATION),
    ("exclusion", EXCLUSION),
)
"""The lexical features, in the order the classifier's weights expect them."""


def lexical_features(text: str) -> list[float]:
    """One value in [0, 1] per FEATURES entry: 0 absent, 1 present once, more matches saturate towards 1."""
    values = []
    for _, pattern in FEATURES:
        hits = sum(1 for _ in pattern.finditer(text))
        values.append(0.0 if hits == 0 else min(1.0, 0.6 + 0.2 * hits))
    return values


@dataclass(frozen=True, slots=True)
class LexiconHit:
    """A span the lexicon flags on its own (a slur, an insult aimed at the reader)."""

    kind: str
    start: int
    end: int
    score: float


LEXICON_SCORES = {"slur": 0.95, "directed_insult": 0.9}
"""The score a direct lexicon hit gets: slurs and directed insults are toxic whatever the classifier says."""


def lexicon_hits(text: str) -> list[LexiconHit]:
    """Slurs and directed insults in `text`, with their spans."""
    hits = [LexiconHit("slur", m.start(), m.end(), LEXICON_SCORES["slur"]) for m in SLUR.finditer(text)]
    hits += [
        LexiconHit("directed_insult", m.start(), m.end(), LEXICON_SCORES["directed_insult"])
        for m in DIRECTED_INSULT.finditer(text)
    ]
    return sorted(hits, key=lambda h: (h.start, h.end, h.kind))
