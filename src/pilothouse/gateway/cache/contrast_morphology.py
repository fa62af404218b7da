"""Word forms for the contrast check: a light lemmatiser, typo distance and derivation.

- `lemma(word)`: plural, -ing, -ed and -ly forms to one key by suffix rules (plus irregular forms), where the
  form does not change what is asked. Comparative and superlative endings (-er, -est) are never removed:
  "faster" is not "fast".
- `typo(a, b)`: the two are one slip apart (Damerau-Levenshtein <= 1 from length 4, <= 2 from length 8),
  and the difference is not an inflection or a negating affix ("larger"/"large", "able"/"unable").
- `derived(a, b)`: the two share a stem once a derivational suffix is removed ("summary"/"summarize",
  "configure"/"configuration").
"""

from __future__ import annotations

from functools import lru_cache


def _split(text: str) -> list[str]:
    return text.split()


_IRREGULAR = {
    "children": "child",
    "people": "person",
    "men": "man",
    "women": "woman",
    "feet": "foot",
    "teeth": "tooth",
    "mice": "mouse",
    "geese": "goose",
    "indices": "index",
    "matrices": "matrix",
    "vertices": "vertex",
    "analyses": "analysis",
    "criteria": "criterion",
    "phenomena": "phenomenon",
    "leaves": "leaf",
    "lives": "life",
    "knives": "knife",
    "wives": "wife",
    "halves": "half",
    "shelves": "shelf",
    "went": "go",
    "gone": "go",
    "goes": "go",
    "made": "make",
    "took": "take",
    "taken": "take",
    "gave": "give",
    "given": "give",
    "wrote": "write",
    "written": "write",
    "chose": "choose",
    "chosen": "choose",
    "bought": "buy",
    "sold": "sell",
    "sent": "send",
    "paid": "pay",
    "found": "find",
    "built": "build",
    "ran": "run",
    "ate": "eat",
    "eaten": "eat",
    "broke": "break",
    "broken": "break",
    "froze": "freeze",
    "frozen": "freeze",
    "stole": "steal",
    "stolen": "steal",
    "lost": "lose",
    "kept": "keep",
    "left": "leave",
    "meant": "mean",
    "spent": "spend",
    "taught": "teach",
    "thought": "think",
    "caught": "catch",
    "brought": "bring",
    "felt": "feel",
    "held": "hold",
    "told": "tell",
    "said": "say",
    "saw": "see",
    "seen": "see",
    "knew": "know",
    "known": "know",
    "grew": "grow",
    "grown": "grow",
    "drove": "drive",
    "driven": "drive",
    "flew": "fly",
    "flown": "fly",
    "began": "begin",
    "begun": "begin",
    "forgot": "forget",
    "forgotten": "forget",
    "hid": "hide",
    "hidden": "hide",
    "shown": "show",
    "woke": "wake",
    "woken": "wake",
    "led": "lead",
    "fed": "feed",
    "slept": "sleep",
    "swam": "swim",
    "rang": "ring",
    "sang": "sing",
    "drank": "drink",
    "wore": "wear",
    "worn": "wear",
    "tore": "tear",
    "torn": "tear",
    "understood": "understand",
    "rode": "ride",
    "ridden": "ride",
    "fell": "fall",
    "fallen": "fall",
    "won": "win",
    "hung": "hang",
    "dealt": "deal",
}
_KEEP_S = frozenset(
    _split(
        "news series species analysis basis crisis thesis diagnosis physics mathematics economics politics ethics "
        "statistics genetics logistics electronics graphics linguistics lens gas bias canvas atlas alias chaos always "
        "perhaps whereas plus thus status corpus virus campus bonus census genus apparatus yes its this his has was "
        "does is us bus minus focus fungus cactus radius tennis axis various previous serious famous jealous "
        "nervous anxious obvious dangerous delicious continuous numerous synchronous asynchronous anonymous "
        "religious curious mucus sinus lupus hummus octopus herpes diabetes rabies measles mumps scabies "
        "aws sas saas paas iaas dns https ios macos kubernetes postgres redis express pandas jenkins css sass "
        "less unless across afterwards towards christmas texas paris athens brussels wales"
    )
)
_KEEP_LY = frozenset(
    _split(
        "family supply apply reply italy july assembly anomaly early only holy ugly rally bully fly belly jelly "
        "lily ally daily weekly monthly yearly hourly nightly quarterly likely unlikely friendly fully really "
        "silly reply multiply comply imply rely monopoly butterfly"
    )
)
_KEEP_ED = frozenset(_split("need speed feed seed breed bleed proceed succeed exceed bed red shed hundred sacred"))
_KEEP_ING = frozenset(
    _split("string thing nothing something anything everything during king spring bring wing sing ring")
)
_VOWELS = frozenset("aeiouy")
# Derivational suffixes, longest first: removing one gives a stem shared by related words.
_DERIVATIONAL = (
    "ization",
    "isation",
    "ations",
    "ation",
    "ition",
    "ments",
    "ment",
    "ness",
    "ity",
    "ize",
    "ise",
    "ify",
    "ions",
    "ion",
    "ing",
    "ed",
    "al",
    "ive",
    "ic",
    "ance",
    "ence",
    "ant",
    "ent",
    "y",
    "e",
    "s",
)
# Endings that turn a word into a different one: a difference made only of these is never a typo.
_INFLECTIONS = ("s", "es", "d", "ed", "r", "er", "st", "est", "ly", "y", "n", "en", "ing", "ful", "less", "ness")
NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "de", "anti", "mis", "a", "counter")


def _undouble(stem: str) -> str:
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        return stem[:-1]
    return stem


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """A key shared by the inflected forms of `word` ("resets", "resetting", "reset" -> "reset")."""
    if word in _IRREGULAR:  # the key of its base form, so that "hidden" and "hiding" share one
        base = _IRREGULAR[word]
        return base[:-1] if base.endswith("e") and len(base) > 3 else base
    if not word.isalpha() or len(word) <= 3:
        return word
    w = word
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "xes", "ches", "shes", "zzes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and w not in _KEEP_S:
        w = w[:-1]
    if w.endswith("ing") and len(w) > 5 and w not in _KEEP_ING:
        stem = w[:-3]
        if any(c in _VOWELS for c in stem):
            w = _undouble(stem)
    elif w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("ed") and len(w) > 4 and w not in _KEEP_ED and not w.endswith("eed"):
        stem = w[:-2]
        w = _undouble(stem) if any(c in _VOWELS for c in stem) else w
    elif w.endswith("ly") and len(w) > 5 and w not in _KEEP_LY:
        w = w[:-3] + "y" if w.endswith("ily") else w[:-2]
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


def damerau(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (optimal string alignment), or limit + 1 when it exceeds `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[len(b)]


def _affix_only(a: str, b: str) -> bool:
    """`b` is `a` plus an inflection or a negating prefix, or the other way round."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if long.startswith(short) and long[len(short) :] in _INFLECTIONS:
        return True
    if long.endswith(short) and long[: len(long) - len(short)] in NEGATING_PREFIXES:
        return True
    if short.endswith("e") and long.startswith(short[:-1]) and long[len(short) - 1 :] in ("er", "est", "ed"):
        return True
    return short.endswith("y") and long.startswith(short[:-1]) and long[len(short) - 1 :] in ("ier", "iest")


def typo(a: str, b: str) -> bool:
    """`a` and `b` are one typing slip apart; never for numbers, short words, or a change of affix."""
    if a == b or not a.isalpha() or not b.isalpha():
        return False
    shortest = min(len(a), len(b))
    if shortest < 4 or _affix_only(a, b):
        return False
    limit = 2 if shortest >= 8 else 1
    return damerau(a, b, limit) <= limit


def derivational_stem(word: str) -> str:
    for suffix in _DERIVATIONAL:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def derived(a: str, b: str) -> bool:
    """`a` and `b` are derived from one stem of at least 5 letters ("summary"/"summarise"), or one is the
    other's first four or more letters and the other is at least twice as long ("config"/"configuration")."""
    if not a.isalpha() or not b.isalpha() or a == b:
        return False
    sa, sb = derivational_stem(a), derivational_stem(b)
    if len(sa) >= 5 and (sa == sb or _undouble(sa) == _undouble(sb)):
        return True
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= 4 and long.startswith(short) and len(long) >= 2 * len(short) - 1


_IRREGULAR_NOUNS = frozenset(
    _split(
        "children people men women feet teeth mice geese indices matrices vertices analyses criteria phenomena "
        "leaves lives knives wives halves shelves"
    )
)
_PAST_FORMS = frozenset(w for w in _IRREGULAR if w not in _IRREGULAR_NOUNS and w != "goes")


def verb_form(word: str) -> str | None:
    """ "ing" for an -ing form, "past" for an -ed form or an irregular past ("froze", "broken"), else None."""
    if word in _PAST_FORMS:
        return "past"
    if not word.isalpha() or lemma(word) == word.rstrip("e"):
        return None
    if word.endswith("ing") and word not in _KEEP_ING:
        return "ing"
    if word.endswith("ed") and word not in _KEEP_ED and not word.endswith("eed"):
        return "past"
    return None


def comparative_bases(word: str) -> tuple[str, ...]:
    """The adjectives a comparative or superlative may be built on ("thinner" -> "thin", "heavier" -> "heavy",
    "wider" -> "wid", "wide"); () when `word` does not end like one."""
    for suffix, repl in (("iest", "y"), ("ier", "y"), ("est", ""), ("er", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and word.isalpha():
            stem = word[: -len(suffix)] + repl
            if repl:
                return (stem,)
            return (stem, _undouble(stem), stem + "e")
    return ()


def degree_change(a: str, b: str) -> bool:
    """One word is the other's comparative or superlative ("cheap"/"cheaper", "easy"/"easiest")."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    for base_end, suffixes in (("", ("er", "est", "r", "st")), ("y", ("ier", "iest"))):
        stem = short[: len(short) - len(base_end)] if base_end and short.endswith(base_end) else short
        if base_end and not short.endswith(base_end):
            continue
        for suffix in suffixes:
            if long == stem + suffix or long == stem + stem[-1:] + suffix:
                return True
    return False
