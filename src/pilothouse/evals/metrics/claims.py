"""Claims and content words: how the RAG metrics cut an answer into checkable statements and compare words.

A claim is a sentence of the answer (`guards/sentences.py` finds them) with at least `MIN_CLAIM_WORDS` words
that states something: questions, greetings and sign-offs ("I hope this helps!") are not claims. Content words
are lower-cased word tokens that are not stop words, crudely stemmed so "libraries" meets "library".
"""

from __future__ import annotations

import re

from pilothouse.guards.sentences import sentence_spans

MIN_CLAIM_WORDS = 3

_WORD = re.compile(r"[^\W_]+(?:[.,'\u2019][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"\d")
_NOT_A_CLAIM = re.compile(
    r"^(?:i hope (?:this|that) helps|let me know|feel free|thanks?\b|thank you|hope this|happy to help|"
    r"is there anything else|sure[,!.]|certainly[,!.]|of course[,!.]|here (?:is|are) )",
    re.IGNORECASE,
)

_STOP_WORDS = """
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
off on once only or other our ours ourselves out over own same she should so some such than that the their
theirs them themselves then there these they this those through to too under until up very was we were what
when where which while who whom why will with would you your yours yourself yourselves one may might must
shall us many much well however therefore thus upon within without
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def claims(answer: str) -> list[str]:
    """The sentences of the answer that state something (in order)."""
    out = []
    for span in sentence_spans(answer):
        sentence = span.text.strip(" -*•\t")
        if len(_WORD.findall(sentence)) < MIN_CLAIM_WORDS or sentence.endswith("?"):
            continue
        if _NOT_A_CLAIM.match(sentence):
            continue
        out.append(sentence)
    return out


def stem(word: str) -> str:
    """A crude suffix stripper: enough for "libraries"/"library", "used"/"use", "editions"/"edition"."""
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (numbers keep their separators: "2,099.00")."""
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """Stemmed tokens that are not stop words (numbers are kept, normalised: "2,099.00" -> "2099")."""
    out = []
    for token in tokens(text):
        if token in STOP_WORDS:
            continue
        out.append(normalise_number(token) if _NUMBER.search(token) else stem(token))
    return out


def normalise_number(token: str) -> str:
    """ "2,099.00" and "2099" compare equal; other tokens with digits are kept as written."""
    plain = token.replace(",", "")
    try:
        value = float(plain)
    except ValueError:
        return token
    return f"{value:g}" if value == value else token


def numbers(text: str) -> set[str]:
    return {normalise_number(t) for t in tokens(text) if _NUMBER.search(t)}


def names(text: str) -> set[str]:
    """Capitalised words that do not start a sentence (names, places, products), lower-cased."""
    found: set[str] = set()
    for span in sentence_spans(text):
        words = _WORD.findall(span.text)
        for word in words[1:]:
            if word[:1].isupper() and word.lower() not in STOP_WORDS:
                found.add(word.lower())
    return found
