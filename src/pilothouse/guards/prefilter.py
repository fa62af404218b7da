"""Skipping the rules that cannot match a text, before running their regular expressions.

The injection phrasing rules (`injection/patterns.py`) are large case-insensitive alternations tried at every
position of the text: on ordinary prompts, which match none of them, they were most of the heuristics' time
(about 1 µs per character for the direct rules); the secrets scanner's ~20 provider formats were most of its
time. Every rule needs some literal text to match, though: "ignore all previous instructions" cannot match a
text that contains none of the overriding verbs, nor an Anthropic key one without `sk-ant-`.

`necessary_literals` reads a compiled expression's parse tree and returns a set of strings of which every
match contains at least one (or None when it cannot tell); `RuleGate.candidates` keeps the rules one of whose
literals is in the text, found by one search for all the literals instead of a scan per rule.

The gate only skips rules whose expression cannot match, so the findings are exactly those of running every
rule. Case: the rules are compiled with IGNORECASE, under which an ASCII letter of the pattern also matches
its upper case and four other characters (U+0130 and U+0131, the dotted capital and dotless small i, match
`i`; U+017F, the long s, matches `s`; U+212A, the Kelvin sign, matches `k`: Python's simple case mapping and
its extra equivalences, found by trying every code point in tests/guards/test_prefilter.py); the text is
folded the same way before the search. A literal character with case outside ASCII ends a literal run
instead of being folded. A case-sensitive pattern is gated the same way (its literals lower-cased, the text
folded): weaker, still exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

__all__ = ["RuleGate", "fold", "necessary_literals"]

_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
"""Characters that match an ASCII letter of an IGNORECASE pattern besides its two cases."""

Literals = frozenset[str]


def fold(text: str) -> str:
    """`text` as the gate searches it: what an IGNORECASE ASCII letter matches, folded to that letter."""
    if text.isascii():
        return text if text.islower() else text.lower()
    return text.translate(_FOLD).lower()


def _better(a: Literals | None, b: Literals | None) -> Literals | None:
    """The more selective of two literal sets (longer shortest literal, then fewer literals)."""
    if a is None:
        return b
    if b is None:
        return a
    key_a, key_b = (min(map(len, a)), -len(a)), (min(map(len, b)), -len(b))
    return a if key_a >= key_b else b


def _literal_char(code: int) -> str | None:
    char = chr(code)
    if char.isascii():
        return char.lower()
    return char if char.lower() == char.upper() else None  # caseless (emoji, symbols): matched as is


def _sequence(items: Sequence[tuple[Any, Any]]) -> Literals | None:
    """Necessary literals of a concatenation: the best of its literal runs and of its items' own sets."""
    best: Literals | None = None
    run: list[str] = []
    for op, av in items:
        char = _literal_char(av) if op is sre.LITERAL else None
        if char is not None:
            run.append(char)
            continue
        if run:
            best = _better(best, frozenset({"".join(run)}))
            run = []
        best = _better(best, _node(op, av))
    if run:
        best = _better(best, frozenset({"".join(run)}))
    return best


def _node(op: Any, av: Any) -> Literals | None:
    if op is sre.LITERAL:
        char = _literal_char(av)
        return None if char is None else frozenset({char})
    if op is sre.SUBPATTERN:
        return _sequence(av[-1])
    if op is sre.ATOMIC_GROUP:
        return _sequence(av)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, _, body = av
        return _sequence(body) if low >= 1 else None
    if op is sre.BRANCH:
        union: set[str] = set()
        for branch in av[1]:
            found = _sequence(branch)
            if found is None:
                return None
            union |= found
        return frozenset(union)
    if op is sre.IN:
        chars = [_literal_char(v) if o is sre.LITERAL else None for o, v in av]
        return None if not chars or None in chars else frozenset(c for c in chars if c is not None)
    return None  # any character, classes, categories, anchors, lookarounds, back-references: no literal


def necessary_literals(pattern: re.Pattern[str]) -> Literals | None:
    """Strings (lower case) of which every match of `pattern` contains at least one, in the folded text;
    None when the pattern can match without any (then it must always be run)."""
    found = _sequence(sre_parse.parse(pattern.pattern, pattern.flags))
    if found is None or "" in found:
        return None
    # a literal containing another one adds nothing: wherever it is, the shorter one is too
    return frozenset(a for a in found if not any(b != a and b in a for b in found))


def _trie(words: Sequence[str]) -> str:
    """An expression matching any of `words` (non-empty), as a trie: one branch per next character, and at
    each node the longer continuations before the end of a word, so a match is the longest word there."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if "" in node:
            branches.append("")
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(root)


class RuleGate:
    """The rules of a tuple that can match a text (anything with a `pattern`), in their order.

    One search finds which literals of all the rules occur: a lookahead over a trie of the literals reports
    at each position the longest literal starting there (a flat alternation of ~200 literals cost 7 times
    more); every other literal starting there is a prefix of it, so the literals present are the reported
    ones and their prefixes among the literals."""

    def __init__(self, rules: Sequence[Any]) -> None:
        self.rules = tuple(rules)
        self.literals: tuple[Literals | None, ...] = tuple(necessary_literals(rule.pattern) for rule in self.rules)
        every = sorted({lit for lits in self.literals if lits for lit in lits}, key=lambda lit: (-len(lit), lit))
        self._search = re.compile(f"(?=({_trie(every)}))", re.DOTALL) if every else None
        self._implied = {lit: frozenset(other for other in every if lit.startswith(other)) for lit in every}

    def present(self, text: str) -> set[str]:
        """The rules' literals that occur in `text` (folded)."""
        if self._search is None:
            return set()
        implied = self._implied
        return {lit for found in set(self._search.findall(fold(text))) for lit in implied[found]}

    def candidates(self, text: str) -> list[Any]:
        present = self.present(text)
        return [
            rule
            for rule, literals in zip(self.rules, self.literals, strict=True)
            if literals is None or not literals.isdisjoint(present)
        ]
