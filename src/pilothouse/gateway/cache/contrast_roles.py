"""Who does what, which way, and when: the contrast check's rules on the structure around aligned words.

Word alignment (contrast_align) says both questions use the same words; these rules say whether the words
play the same parts:

- `argument_swap`: two arguments cross a verb in opposite directions, so subject and object trade places.
  Arguments are aligned content words and personal pronouns, compared by grammatical person ("I"/"me" are
  one argument, "someone"/"somebody" another): "can I give my manager a review" / "can my manager give me a
  review", "if someone rear-ends me" / "if I rear-end someone", "does Alice owe Bob" / "does Bob owe Alice".
  A rotation of the question ("in Excel, how do I merge cells" / "how do I merge cells in Excel") moves
  words across a verb in one direction only, so it never counts. Possessives ("my manager") are not
  arguments.
- `unit_direction`: the unit a number is given in changes ("100 degrees Celsius in Fahrenheit" / "100 degrees
  Fahrenheit in Celsius", "how many euros is 100 dollars" / "how many dollars is 100 euros"), or, with no
  number, two units swap order ("Celsius in Fahrenheit" / "Fahrenheit in Celsius").
- `aspect_change`: one verb in the simple past in one question and in the progressive in the other ("my
  car overheated" / "my car is overheating"): a finished event and one going on now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pilothouse.gateway.cache.contrast_features import Analysis, Item
from pilothouse.gateway.cache.contrast_morphology import verb_form


def _split(text: str) -> list[str]:
    return text.split()


# Personal pronouns as arguments, by grammatical person; "her" only where no noun follows it ("her car").
_PRONOUN_ARGUMENTS = {
    **dict.fromkeys(_split("i me myself we us ourselves"), "1"),
    **dict.fromkeys(_split("you yourself yourselves u"), "2"),
    **dict.fromkeys(_split("he him himself"), "3m"),
    **dict.fromkeys(_split("she her herself"), "3f"),
    **dict.fromkeys(_split("they them themselves"), "3p"),
    **dict.fromkeys(_split("someone somebody anyone anybody everyone everybody"), "someone"),
}
_BE = frozenset(_split("is are am was were be been being"))
_PERFECT = frozenset(_split("have has had"))
_PASSIVE_AUX = _BE | frozenset(_split("get gets got gotten getting"))
_UNIT_CLASSES = ("unit", "time_frame")
_DETERMINERS = frozenset(_split("a an the my your his her its our their this that these those some any every each"))

Arguments = list[tuple[int, str]]  # (position, argument key)


def _pronouns(a: Analysis) -> Arguments:
    content = {m.pos for m in a.content}
    out = []
    for i, w in enumerate(a.words):
        key = _PRONOUN_ARGUMENTS.get(w)
        if key is not None and not (w == "her" and i + 1 in content):
            out.append((i, "p:" + key))
    return out


def _after_determiner(words: Sequence[str], item: Item) -> bool:
    return item.pos > 0 and words[item.pos - 1] in _DETERMINERS


def _sides(args: Arguments, verb: int) -> Counter[tuple[str, bool]]:
    """How many times each argument stands before (True) and after (False) the verb."""
    return Counter((key, pos < verb) for pos, key in args if pos != verb)


def argument_swap(query: Analysis, cached: Analysis, pairs: Sequence[tuple[Item, Item]]) -> tuple[str, str] | None:
    """("role_swap", reason) when two arguments cross an aligned verb in opposite directions.

    `pairs`: the aligned content words (query word, cached word). A swap of two nouns needs an auxiliary
    before the moved subject ("does Alice owe Bob"): without one the verb may be a noun of a reworded
    question; a swap that moves a pronoun is a clause on its own ("if I give my parents money")."""
    if query.passive or cached.passive:
        return None
    keys = {id(x): f"w:{n}" for n, (x, _) in enumerate(pairs)}
    q_pron, c_pron = _pronouns(query), _pronouns(cached)
    shared = {k for _, k in q_pron} & {k for _, k in c_pron}
    q_args = [(x.pos, keys[id(x)]) for x, _ in pairs] + [(p, k) for p, k in q_pron if k in shared]
    c_args = [(y.pos, keys[id(x)]) for x, y in pairs] + [(p, k) for p, k in c_pron if k in shared]
    names = {keys[id(x)]: x.text for x, _ in pairs} | {k: query.words[p] for p, k in q_pron}
    for x_verb, y_verb in pairs:
        if _after_determiner(query.words, x_verb) or _after_determiner(cached.words, y_verb):
            continue  # "my password", "the owner": a noun, not the verb
        q_sides, c_sides = _sides(q_args, x_verb.pos), _sides(c_args, y_verb.pos)
        all_keys = {k for k, _ in q_sides} | {k for k, _ in c_sides}
        back = [
            k for k in all_keys if q_sides[(k, True)] > c_sides[(k, True)] and q_sides[(k, False)] < c_sides[(k, False)]
        ]
        front = [
            k for k in all_keys if q_sides[(k, False)] > c_sides[(k, False)] and q_sides[(k, True)] < c_sides[(k, True)]
        ]
        if not back or not front or keys[id(x_verb)] in back + front:
            continue
        pronoun = any(k.startswith("p:") for k in back + front)
        moved_subjects = [p for p, k in q_args if k in back and p < x_verb.pos]
        after_aux = any(a < p < x_verb.pos for p in moved_subjects for a in query.aux)
        if pronoun or after_aux:
            first, second = sorted(back)[0], sorted(front)[0]
            return (
                "role_swap",
                f"'{names[first]}' and '{names[second]}' swap roles around '{x_verb.text}' (who does what to whom)",
            )
    return None


def _bound_units(a: Analysis) -> list[str]:
    """Units and time frames a number is given in ("100 degrees Celsius", "5km"), in order."""
    numbers = {m.pos for m in a.marked if m.cls == "number"}
    return [m.key for m in a.marked if m.cls in _UNIT_CLASSES and any(m.pos - 2 <= n <= m.pos for n in numbers)]


def unit_direction(query: Analysis, cached: Analysis) -> tuple[str, str] | None:
    """("direction", reason) when a conversion or rate runs the other way (the units themselves match)."""
    q_bound, c_bound = _bound_units(query), _bound_units(cached)
    if Counter(q_bound) != Counter(c_bound):
        unit = next(iter(Counter(q_bound) - Counter(c_bound)), None) or next(iter(Counter(c_bound) - Counter(q_bound)))
        return (
            "direction",
            f"the quantity is given in '{unit}' in one question and not the other (a conversion the other way)",
        )
    if q_bound:
        return None
    q_units = [m for m in query.marked if m.cls in _UNIT_CLASSES]
    c_units = [m for m in cached.marked if m.cls in _UNIT_CLASSES]
    q_order = list(dict.fromkeys(m.key for m in q_units))
    c_order = list(dict.fromkeys(m.key for m in c_units))
    if len(q_order) >= 2 and sorted(q_order) == sorted(c_order) and q_order != c_order:
        return "direction", f"'{q_order[0]}' and '{q_order[1]}' change order (a conversion or rate the other way)"
    return None


def _aspect(words: Sequence[str], item: Item) -> str | None:
    """ "progressive" ("is overheating"), "past" ("overheated", not a passive "was cancelled"), or None."""
    form = verb_form(item.text.lower())
    before = set(words[max(0, item.pos - 2) : item.pos])
    if form is None and item.pos and words[item.pos - 1] in _PERFECT:
        form = "past"  # "I have read", "I have put": a participle written like the base form
    if form == "ing" and before & _BE:
        return "progressive"
    if form == "past" and not before & _PASSIVE_AUX:
        return "past"
    return None


def aspect_change(query: Analysis, cached: Analysis, pairs: Sequence[tuple[Item, Item]]) -> tuple[str, str] | None:
    """("tense", reason) when an aligned verb is in the simple past on one side and the progressive on the
    other."""
    for x, y in pairs:
        forms = {_aspect(query.words, x), _aspect(cached.words, y)}
        if forms == {"past", "progressive"}:
            return "tense", f"'{x.text}' in the query and '{y.text}' in the cached question differ in tense"
    return None
