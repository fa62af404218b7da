"""Person names by rules, for when no NER model is installed (see `ner.py`).

Three kinds of evidence, each giving a span over the name's capitalised words only:

1. a title before it: `Mr. Fernandez`, `ms. Wijtze`, `Dr Nielsen` (score 0.75);
2. a cue phrase before it: `my name is`, `call me`, `directed by`, `speak to`, `said`... (score 0.6);
3. a common given name (`given_names.py`) followed by one or two capitalised words: `Colleen Wiley`
   (score 0.6);
4. a capitalised word that opens a line and addresses someone: `Marisca, can I ...` (score 0.55).

A capitalised word in the stop list (`The`, `Street`, `Inc`, months, days...) ends a name. What the rules
miss: a lone surname or a foreign given name without a title or cue ("said Honoré" is found, "Honoré
said" is not), and all-caps or all-lowercase names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pilothouse.guards.pii.given_names import GIVEN_NAMES
from pilothouse.guards.scanner import Finding

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_TITLES = frozenset(
    ["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "madam", "dame", "lady", "lord"]
)
_CUES = (
    "my name is",
    "last name",
    "first name",
    "surname",
    "name is",
    "names are",
    "call me",
    "calls me",
    "called",
    "named",
    "directed by",
    "starring",
    "written by",
    "signed by",
    "speak to",
    "talk to",
    "ask for",
    "said",
    "says",
    "asked",
    "told",
    "shouted at",
    "assistant to",
    "contact",
    "follow up with",
    "thanks",
    "thank you",
    "dear",
    "hi",
    "hello",
    "regards",
    "sincerely",
)
_CUE = re.compile(r"(?<![^\W\d_])(?:" + "|".join(re.escape(c) for c in _CUES) + r")[\s:,?]+$", re.IGNORECASE)
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "i",
        "i'm",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "we",
        "they",
        "you",
        "my",
        "your",
        "his",
        "her",
        "our",
        "their",
        "mr",
        "mrs",
        "ms",
        "dr",
        "is",
        "are",
        "was",
        "be",
        "am",
        "please",
        "dear",
        "hi",
        "hello",
        "thanks",
        "street",
        "st",
        "road",
        "rd",
        "avenue",
        "ave",
        "drive",
        "lane",
        "ln",
        "boulevard",
        "blvd",
        "way",
        "court",
        "ct",
        "place",
        "square",
        "park",
        "club",
        "inc",
        "ltd",
        "llc",
        "corp",
        "co",
        "company",
        "group",
        "software",
        "university",
        "college",
        "school",
        "hospital",
        "bank",
        "weekly",
        "news",
        "union",
        "day",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "god",
        "jesus",
        "christmas",
        "easter",
        "america",
        "american",
        "europe",
        "european",
        "english",
    ]
)

TITLE_SCORE = 0.75
CUE_SCORE = 0.6
GIVEN_NAME_SCORE = 0.6
VOCATIVE_SCORE = 0.55
_VOCATIVE_AFTER = re.compile(r", (?:can|could|would|will|please|thanks|thank you|I|we)\b")


def _is_name_word(word: str) -> bool:
    return word[0].isupper() and not word.isupper() and word.lower() not in _STOP


def _name_run(words: list[re.Match[str]], first: int, text: str, limit: int = 3) -> tuple[int, int] | None:
    """The character span of up to `limit` name words from words[first], adjacent on one line."""
    end_index = first
    while end_index < len(words) and end_index - first < limit and _is_name_word(words[end_index].group()):
        if end_index > first and text[words[end_index - 1].end() : words[end_index].start()] != " ":
            break
        end_index += 1
    if end_index == first:
        return None
    return words[first].start(), words[end_index - 1].end()


def find_persons_rules(text: str) -> Iterator[Finding]:
    """Person names in `text` found by titles, cue phrases and given names."""
    words = list(_WORD.finditer(text))
    taken_until = -1
    for index, match in enumerate(words):
        if match.start() < taken_until:
            continue
        word = match.group()
        found: tuple[int, int] | None = None
        score, why = 0.0, ""
        if word.lower() in _TITLES and index + 1 < len(words):
            gap = text[match.end() : words[index + 1].start()]
            if gap.strip() in ("", ".") and "\n" not in gap:
                found, score, why = _name_run(words, index + 1, text), TITLE_SCORE, "after a title"
        elif not word[0].isupper():
            continue  # every rule below starts at a capitalised word
        elif _is_name_word(word) and _CUE.search(text[max(0, match.start() - 24) : match.start()]):
            found, score, why = _name_run(words, index, text), CUE_SCORE, "after a cue phrase"
        elif (
            _is_name_word(word)
            and (match.start() == 0 or text[match.start() - 1] == "\n")
            and _VOCATIVE_AFTER.match(text, match.end())
        ):
            found, score, why = (match.start(), match.end()), VOCATIVE_SCORE, "addressed by name"
        elif word.lower() in GIVEN_NAMES and word[0].isupper() and not word.isupper():
            run = _name_run(words, index, text)
            if run is not None and run[1] > match.end():
                found, score, why = run, GIVEN_NAME_SCORE, "given name and surname"
        if found is not None:
            taken_until = found[1]
            yield Finding("PERSON", found[0], found[1], score, f"person name ({why})")
