# ruff: noqa: E501  (word lists read better unbroken)
"""Who is a sentence of a document talking to? Dense cues for the indirect head, per segment.

A retrieved document or a tool result is written for people; an injected instruction is written for the AI
that reads it. The difference rarely lies in single words (recipes and exam papers are full of imperatives,
security notices say "never share your password"), so each segment gets two kinds of cues:

- what it says: second-person address, a reference to an AI reader (assistant, model, summariser, agent),
  talk about *the response* or *the user*, tools and commands, links, markdown images, e-mail addresses,
  secrets, markup that hides text from people, encoded blobs, persistence ("from now on"), and hits of the
  rule families of `patterns.py`;
- how it fits the document (register change): whether it is an imperative in a document that otherwise
  is not, whether its content words occur elsewhere in the document, whether the rest of the document
  also says "you" or mentions AI.

`segment_cues` returns the segments (spans over the normalised text, `features.segments`) and one row of
`CUE_NAMES` values per segment. Training and inference call the same function, so the two cannot drift.
"""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt

from pilothouse.guards.injection.features import segments
from pilothouse.guards.injection.patterns import ADDRESSED_TO_AI, DELIMITER, OVERRIDE, PERSONA, Rule

__all__ = ["CUE_NAMES", "segment_cues"]


def _words(text: str) -> str:
    return r"\b(?:" + "|".join(text.split()) + r")\b"


_AI = re.compile(
    r"\b(?:ai|a\.i\.|assistants?|chat ?bots?|bots?|llms?|language models?|models?|gpt[\w-]*|chat ?gpt|claude|copilot|gemini|"
    r"agents?|summari[sz](?:er|ers|ing)|automated|ai systems?|machine reading|crawlers?|the system)\b"
)
_FIRST = re.compile(r"\b(?:i|i'm|i've|i'll|me|my|we|our|us)\b")
_AI_SPEAKS = re.compile(
    r"\b(?:as an? (?:ai|language model|assistant)|i am an? (?:ai|language model|assistant)|i'm an? (?:ai|language model|assistant))\b"
)
_QUOTED = re.compile(r"^\W{0,3}[\"“'][^\"”]{8,}[\"”']\W{0,3}$")
_YOU = re.compile(r"\b(?:you|your|yours|yourself|you're|you'll)\b")
_OUTPUT = re.compile(
    r"\b(?:(?:your|the|this|every|each|any) (?:response|answer|reply|output|summary|completion|message|replies|answers|responses)s?|"
    r"respond|responding|reply (?:with|only|in)|answer (?:with|only|in)|output (?:only|the)|in capital letters|translate your)\b"
)
_USER = re.compile(
    r"\b(?:the user|users?'s?|the reader|the human|the person asking|the requester|the customer's (?:data|card|password))\b"
)
_TOOL = re.compile(
    r"\b(?:tools?|function call|functions?|api|apis|execute|invoke|shell|terminal|command|curl|wget|sudo|rm -rf|subprocess|"
    r"os\.system|plugin|browser|payments?|transfer|merge|grant|admin access|permissions?)\b|`[^`]{2,80}`|\w+\.\w+\("
)
_URL = re.compile(r"https?://|\bwww\.|\b[\w-]+\.(?:com|net|org|io|xyz|ru|cn|info|biz|example|ly)\b")
_IMAGE = re.compile(r"!\[[^\]]{0,80}\]\(")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_SECRET = re.compile(
    r"\b(?:passwords?|api keys?|credentials?|tokens?|secrets?|system prompt|conversation|chat history|history|previous messages|"
    r"one-time code|card number|bank details|session|cookies?|private key|ssh key|home address|personal data|inbox)\b"
)
_SEND = re.compile(
    r"\b(?:send|sends|forward|post|upload|email|e-mail|leak|exfiltrate|append|attach|paste|encode|share)\b"
)
_PERSIST = re.compile(
    r"\b(?:from now on|for the rest of|from this point|never break character|no matter what|regardless of|at all times|in every (?:reply|answer|response))\b"
)
_HIDDEN = re.compile(
    r"<!--|display\s*:\s*none|<div hidden|<span hidden|visibility\s*:\s*hidden|font-size\s*:\s*0|color\s*:\s*white"
)
_COMMENT = re.compile(r"^\s*(?:#|//|/\*|\*|--|;|%)")
_BLOB = re.compile(r"[a-z0-9+/]{24,}={0,2}|(?:[0-9a-f]{2}){12,}")
_INSTEAD = re.compile(
    r"\b(?:instead|rather than|actually|real (?:task|goal|objective)|new task|whatever the user|do not tell|don't tell|without telling|do not mention|don't mention|quietly|secretly)\b"
)
_URGENT = re.compile(r"\b(?:urgent|urgently|immediately|right now|must|required|mandatory)\b")
_META = re.compile(
    r"\b(?:this (?:document|email|e-mail|page|text|message|ticket|file|review|article|website|content)|the (?:document|page|text|content) (?:above|below))\b"
)
_CONTENT_TASK = re.compile(
    r"^(?:\W*)(?:please\s+)?(?:write|compose|explain|describe|list|tell|give|provide|translate|summari[sz]e|generate|create|draft|"
    r"compile|develop|outline|suggest|recommend|name|define|calculate|solve|what|how|why|who|when|which|can you|could you)\b"
)
_IMPERATIVE = re.compile(
    r"^(?:\W|\d)*(?:(?:step|note|tip|important|reminder|p\.?s\.?)\s*\d*\s*[:.)-]\s*)?(?:please\s+|kindly\s+|always\s+|never\s+|do not\s+|don't\s+|just\s+|now\s+|then\s+)?"
    + _words(
        "add answer append apply ask attach avoid bake be begin bring build buy call cancel change check choose click close collect combine compose confirm contact convert copy create cut decode "
        "delete describe disregard do download drop email enable encode end ensure enter execute explain fill find fold follow forget forward fry get give go grant help ignore include inform "
        "insert install invoke keep leave let list load lock log make mention merge mix move note obey open output paste pay place post pour pretend print provide put rate read recommend "
        "remember remind remove render replace reply report respond restart return run save say schedule season select send serve set share show sign skip sort start state stay stir "
        "stop submit summarise summarize switch take tell transfer translate treat try turn type update upload use visit wait warn whisk write act adopt behave speak"
    )
)
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "these",
        "those",
        "you",
        "your",
        "we",
        "our",
        "they",
        "their",
        "he",
        "she",
        "his",
        "her",
        "i",
        "me",
        "my",
        "not",
        "no",
        "do",
        "does",
        "did",
        "will",
        "would",
        "can",
        "could",
        "should",
        "must",
        "may",
        "might",
        "have",
        "has",
        "had",
        "there",
        "here",
        "what",
        "which",
        "who",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "each",
        "every",
        "some",
        "more",
        "most",
        "other",
        "into",
        "about",
        "than",
        "then",
        "so",
        "such",
        "only",
        "also",
        "just",
        "very",
        "out",
        "up",
        "down",
        "over",
        "under",
        "again",
        "please",
    ]
)
_CONTENT_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_STRONG_RULES: tuple[Rule, ...] = OVERRIDE + PERSONA + DELIMITER

CUE_NAMES: tuple[str, ...] = (
    "ai",
    "you",
    "output",
    "user",
    "tool",
    "url",
    "image",
    "email",
    "secret",
    "send_secret",
    "persist",
    "hidden",
    "comment",
    "blob",
    "instead",
    "urgent",
    "meta",
    "content_task",
    "imperative",
    "question",
    "log_chars",
    "rule_strong",
    "rule_addressed",
    "imperative_out_of_place",
    "you_out_of_place",
    "ai_out_of_place",
    "novel_words",
    "doc_imperative",
    "doc_you",
    "doc_ai",
    "log_segments",
    "ai_and_you",
    "ai_and_imperative",
    "output_and_you",
    "first_person",
    "doc_first_person",
    "ai_speaks",
    "quoted",
)
"""The columns of `segment_cues`' matrix, in order (stored in the model artefact and checked on load)."""


def _rule_hits(text: str, rules: tuple[Rule, ...]) -> list[tuple[int, int]]:
    return [match.span() for rule in rules for match in rule.pattern.finditer(text)]


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s < end and e > start for s, e in spans)


def segment_cues(normalized: str) -> tuple[list[tuple[int, int]], npt.NDArray[np.float64]]:
    """The segments of a normalised text and a (segments x len(CUE_NAMES)) matrix of their cues."""
    spans = segments(normalized)
    if not spans:
        return spans, np.zeros((0, len(CUE_NAMES)))
    strong = _rule_hits(normalized, _STRONG_RULES)
    addressed = _rule_hits(normalized, ADDRESSED_TO_AI)
    texts = [normalized[s:e] for s, e in spans]
    own: list[dict[str, bool]] = []
    content: list[set[str]] = []
    for (start, end), text in zip(spans, texts, strict=True):
        own.append(
            {
                "ai": bool(_AI.search(text)),
                "you": bool(_YOU.search(text)),
                "first": bool(_FIRST.search(text)),
                "imperative": bool(_IMPERATIVE.search(text)),
                "strong": _overlaps(strong, start, end),
                "addressed": _overlaps(addressed, start, end),
            }
        )
        content.append({w for w in _CONTENT_WORD.findall(text) if w not in _STOP})
    n = len(spans)
    word_counts: dict[str, int] = {}
    for words in content:
        for w in words:
            word_counts[w] = word_counts.get(w, 0) + 1
    totals = {k: sum(bool(c[k]) for c in own) for k in ("ai", "you", "imperative", "first")}
    rows = np.zeros((n, len(CUE_NAMES)))
    for i, (text, cue, words) in enumerate(zip(texts, own, content, strict=True)):
        others = max(n - 1, 1)
        doc = {k: (totals[k] - bool(cue[k])) / others for k in totals}
        novel = sum(word_counts[w] == 1 for w in words) / len(words) if words and n > 1 else 0.0
        ai, you, imperative = float(cue["ai"]), float(cue["you"]), float(cue["imperative"])
        output = float(bool(_OUTPUT.search(text)))
        secret = bool(_SECRET.search(text))
        values = {
            "ai": ai,
            "you": you,
            "output": output,
            "user": float(bool(_USER.search(text))),
            "tool": float(bool(_TOOL.search(text))),
            "url": float(bool(_URL.search(text))),
            "image": float(bool(_IMAGE.search(text))),
            "email": float(bool(_EMAIL.search(text))),
            "secret": float(secret),
            "send_secret": float(secret and bool(_SEND.search(text))),
            "persist": float(bool(_PERSIST.search(text))),
            "hidden": float(bool(_HIDDEN.search(text))),
            "comment": float(bool(_COMMENT.search(text))),
            "blob": float(bool(_BLOB.search(text))),
            "instead": float(bool(_INSTEAD.search(text))),
            "urgent": float(bool(_URGENT.search(text))),
            "meta": float(bool(_META.search(text))),
            "content_task": float(bool(_CONTENT_TASK.search(text))),
            "imperative": imperative,
            "question": float("?" in text),
            "log_chars": math.log1p(len(text)) / 6.0,
            "rule_strong": float(bool(cue["strong"])),
            "rule_addressed": float(bool(cue["addressed"])),
            "imperative_out_of_place": imperative * (1.0 - doc["imperative"]),
            "you_out_of_place": you * (1.0 - doc["you"]),
            "ai_out_of_place": ai * (1.0 - doc["ai"]),
            "novel_words": novel,
            "doc_imperative": doc["imperative"],
            "doc_you": doc["you"],
            "doc_ai": doc["ai"],
            "log_segments": math.log1p(n) / 4.0,
            "ai_and_you": ai * you,
            "ai_and_imperative": ai * imperative,
            "output_and_you": output * you,
            "first_person": float(cue["first"]),
            "doc_first_person": doc["first"],
            "ai_speaks": float(bool(_AI_SPEAKS.search(text))),
            "quoted": float(bool(_QUOTED.search(text))),
        }
        rows[i] = [values[name] for name in CUE_NAMES]
    return spans, rows
