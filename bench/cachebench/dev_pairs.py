"""Template-generated DEV pairs for tuning the semantic cache's contrast check and threshold.

    python bench/cachebench/dev_pairs.py [--seed 11] [--per-class 2]

writes bench/data/cache_pairs_dev.jsonl: for each domain of dev_domains.py and each class below, pairs of a
cached question and a later query, labelled `hit` (a paraphrase: the cached answer is right) or `miss` (a
contrast: reusing it would be wrong). Deterministic for a seed. Each row carries `split`: `tune` for the
domains the check and threshold may be tuned on, `test` for the held-apart domains (TEST_DOMAINS) that
report what tuning does on fields it never saw.

Paraphrase classes: reorder, politeness, synonym, typo, rewording, voice, abbreviation, contraction, filler,
casing_punct, clause_reorder. Contrast classes: negation, antonym, number, date, time_frame, unit, entity,
language, comparison_swap, added_constraint, specific_vs_general, direction, quantity_word, role_swap, modal,
tense, scope, version, and (added in the second round of issue 11, as general mechanisms rather than the
first held-out set's sentences) pronoun_role_swap ("can I sue the landlord" / "can the landlord sue me"),
conversion_direction ("5 MB in GB" / "5 GB in MB"), comparative_antonym ("cheaper" / "more expensive",
"faster" / "slower") and aspect ("I reset my password" / "I am resetting my password").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `cachebench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cachebench.dev_domains import DOMAINS, TEST_DOMAINS, Domain, Task

OUT = Path(__file__).resolve().parents[1] / "data" / "cache_pairs_dev.jsonl"
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 10: "ten", 12: "twelve", 20: "twenty"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "March", "April", "June", "August", "October", "December")
FRAMES = {
    "day": ("per day", "a day", "daily", "each day", "every day"),
    "week": ("per week", "a week", "weekly", "each week", "every week"),
    "month": ("per month", "a month", "monthly", "each month", "every month"),
    "year": ("per year", "a year", "annually", "each year", "every year"),
}
SCOPES = (
    ("for all users", "for a single user"),
    ("for the whole team", "just for me"),
    ("on all my devices", "on this device only"),
    ("for every project", "for one project"),
)
KEYBOARD = {"a": "s", "e": "r", "i": "o", "o": "p", "r": "t", "s": "d", "t": "y", "n": "m", "l": "k", "u": "y"}

Pair = tuple[str, str]
Rng = random.Random


def how(t: Task) -> str:
    return f"How do I {t.verb} {t.obj}?"


def gerund(verb: str) -> str:
    head, _, rest = verb.partition(" ")
    if head.endswith("e") and not head.endswith("ee"):
        head = head[:-1] + "ing"
    elif len(head) <= 4 and head[-1] not in "aeiouwy" and head[-2] in "aeiou" and head[-3] not in "aeiou":
        head = head + head[-1] + "ing"
    else:
        head += "ing"
    return f"{head} {rest}".strip()


def typo(text: str, rng: Rng) -> str:
    words = text.split()
    choices = [i for i, w in enumerate(words) if w.isalpha() and w.islower() and len(w) >= 5]
    if not choices:
        return text
    i = rng.choice(choices)
    w = words[i]
    k = rng.randrange(1, len(w) - 2)
    op = rng.randrange(4)
    if op == 0:
        w = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
    elif op == 1:
        w = w[:k] + w[k + 1 :]
    elif op == 2:
        w = w[:k] + w[k] + w[k:]
    else:
        w = w[:k] + KEYBOARD.get(w[k], "e") + w[k + 1 :]
    words[i] = w
    return " ".join(words)


def number(n: int, rng: Rng) -> str:
    return NUMBER_WORDS[n] if n in NUMBER_WORDS and rng.random() < 0.3 else str(n)


# --- paraphrases (hit) ------------------------------------------------------------------------------------


def politeness(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    frame = rng.choice(
        (
            "Hi! Could you please tell me how I can {v} {o}? Thanks!",
            "Would you mind explaining how to {v} {o}?",
            "Hello, I'd like to know how to {v} {o}, please.",
            "Can you help me {v} {o}? Thank you so much",
            "Please, how do I {v} {o}?",
            "Sorry to bother you, but how do I {v} {o}?",
            "Hey there, quick question: how can I {v} {o}?",
            "I'd be grateful if you could tell me how to {v} {o}.",
            "Would you be so kind as to explain how to {v} {o}?",
            "Could you please walk me through how to {v} {o}?",
        )
    )
    return how(t), frame.format(v=t.verb, o=t.obj)


def synonym(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    return how(t), rng.choice(("How do I {v} {o}?", "How can I {v} {o}?")).format(v=t.syn_verb, o=t.syn_obj)


def typo_pair(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    base = rng.choice((how(t), f"Can I {t.verb} {t.obj} {t.extra}?", d.name_frame.format(name=rng.choice(d.names))))
    return base, typo(base, rng)


def reorder(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    extra = t.extra[0].upper() + t.extra[1:]
    return f"How do I {t.verb} {t.obj} {t.extra}?", rng.choice(
        (f"{extra}, how do I {t.verb} {t.obj}?", f"{extra}: how can I {t.verb} {t.obj}?")
    )


def rewording(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    frame = rng.choice(
        (
            "What's the procedure to {v} {o}?",
            "What steps do I follow to {v} {o}?",
            "Is there a way to {v} {o}?",
            "What is the easiest way to {v} {o}?",
            "Tell me how to {v} {o}.",
            "How would I go about {g} {o}?",
            "Walk me through how to {v} {o}.",
            "Steps to {v} {o}?",
            "What do I need to do to {v} {o}?",
        )
    )
    return how(t), frame.format(v=t.verb, o=t.obj, g=gerund(t.verb))


def voice(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    obj = t.obj[0].upper() + t.obj[1:] if rng.random() < 0.5 else t.obj
    return rng.choice(
        (
            (f"Can I {t.verb} {t.obj} {t.extra}?", f"Can {t.obj} be {t.pp} {t.extra}?"),
            (f"How do you {t.verb} {t.obj}?", f"How is {t.obj} {t.pp}?"),
            (f"Where can I {t.verb} {t.obj}?", f"Where can {obj.lower()} be {t.pp}?"),
        )
    )


def abbreviation(d: Domain, rng: Rng) -> Pair:
    long, short = rng.choice(d.abbrevs)
    frame = rng.choice(
        ("How do I check my {x}?", "What does a high {x} mean?", "Where can I find my {x}?", "Why is {x} important?")
    )
    return frame.format(x=long), frame.format(x=short)


def contraction(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    a, b = rng.choice(
        (
            ("What is the best way to {v} {o}?", "What's the best way to {v} {o}?"),
            ("I cannot {v} {o}. What should I do?", "I can't {v} {o}. What should I do?"),
            ("Why is it not possible to {v} {o}?", "Why isn't it possible to {v} {o}?"),
            ("I am trying to {v} {o} but it does not work", "I'm trying to {v} {o} but it doesn't work"),
            ("Why will it not let me {v} {o}?", "Why won't it let me {v} {o}?"),
        )
    )
    return a.format(v=t.verb, o=t.obj), b.format(v=t.verb, o=t.obj)


def filler(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    frame = rng.choice(
        (
            "So, um, how do I actually {v} {o}?",
            "Basically, how do I {v} {o}?",
            "Okay so how do I just {v} {o}?",
            "Hmm, how do I {v} {o} exactly?",
            "Anyway, how would I {v} {o}?",
            "Just wondering, how do I {v} {o}?",
        )
    )
    return how(t), frame.format(v=t.verb, o=t.obj)


def casing_punct(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    base = how(t)
    return base, rng.choice((base.lower().rstrip("?"), base.upper(), base + "??", base[:-1] + " ?", base[:-1] + "..."))


# --- contrasts (miss) -------------------------------------------------------------------------------------


def negation(d: Domain, rng: Rng) -> Pair:
    t, f = rng.choice(d.tasks), rng.choice(d.facts)
    return rng.choice(
        (
            (f"What happens if I {f}?", f"What happens if I don't {f}?"),
            (f"Why can I {t.verb} {t.obj}?", f"Why can't I {t.verb} {t.obj}?"),
            (f"Is it okay to {f}?", f"Is it not okay to {f}?"),
            (f"Should I {f}?", f"Should I never {f}?"),
        )
    )


def antonym(d: Domain, rng: Rng) -> Pair:
    with_anti = [t for t in d.tasks if t.anti]
    if with_anti and rng.random() < 0.5:
        t = rng.choice(with_anti)
        return how(t), f"How do I {t.anti} {t.obj}?"
    subject, adj, _, anti = rng.choice(d.adjs)
    frame = rng.choice(("Is {s} {a}?", "Why is {s} so {a}?", "Is {s} {a} compared to last year?"))
    return frame.format(s=subject, a=adj), frame.format(s=subject, a=anti)


def number_pair(d: Domain, rng: Rng) -> Pair:
    q = rng.choice(d.count_q)
    a, b = rng.sample((2, 3, 4, 5, 6, 10, 12, 20), 2)
    return q.format(n=number(a, rng)), q.format(n=number(b, rng))


def date(d: Domain, rng: Rng) -> Pair:
    q = rng.choice(d.date_q)
    pool = MONTHS if "in {d}" in q else WEEKDAYS
    a, b = rng.sample(pool, 2)
    return q.format(d=a), q.format(d=b)


def time_frame(d: Domain, rng: Rng) -> Pair:
    q = rng.choice(d.frame_q)
    a, b = rng.sample(list(FRAMES), 2)
    return q.format(t=rng.choice(FRAMES[a])), q.format(t=rng.choice(FRAMES[b]))


def unit(d: Domain, rng: Rng) -> Pair:
    q, a, b = rng.choice(d.unit_q)
    n = rng.choice((5, 20, 100, 500))
    return q.format(n=n, u=a), q.format(n=n, u=b)


def entity(d: Domain, rng: Rng) -> Pair:
    a, b = rng.sample(d.names, 2)
    return d.name_frame.format(name=a), d.name_frame.format(name=b)


def language(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    a, b = rng.sample(d.langs, 2)
    if d.langs[0] == "Python":
        return f"How do I {t.verb} {t.obj} in {a}?", f"How do I {t.verb} {t.obj} in {b}?"
    return (
        f"Is there a guide in {a} on how to {t.verb} {t.obj}?",
        f"Is there a guide in {b} on how to {t.verb} {t.obj}?",
    )


def comparison_swap(d: Domain, rng: Rng) -> Pair:
    a, b, cmp = rng.choice(d.comps)
    frame = rng.choice(("Is {a} {c} than {b}?", "Why is {a} {c} than {b}?", "Is {a} really {c} than {b}?"))
    return frame.format(a=a, b=b, c=cmp), frame.format(a=b, b=a, c=cmp)


def added_constraint(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    return how(t), f"How do I {t.verb} {t.obj} {t.extra}?"


def specific_vs_general(d: Domain, rng: Rng) -> Pair:
    spec, gen = rng.choice(d.specific)
    frame = rng.choice(
        ("What should I know about {x}?", "Any tips for dealing with {x}?", "Where do I start with {x}?")
    )
    return frame.format(x=spec), frame.format(x=gen)


def direction(d: Domain, rng: Rng) -> Pair:
    q = rng.choice(d.moves)
    a, b = rng.sample(d.places, 2)
    return q.format(a=a, b=b), q.format(a=b, b=a)


def quantity_word(d: Domain, rng: Rng) -> Pair:
    noun, pred = rng.choice(d.plurals)
    a, b = rng.sample(("all", "some", "any", "most", "no"), 2)
    return f"Do {a} {noun} {pred}?", f"Do {b} {noun} {pred}?"


def role_swap(d: Domain, rng: Rng) -> Pair:
    a, verb, b = rng.choice(d.roles)
    frame = rng.choice(("Can {a} {v} {b}?", "When does {a} {v} {b}?", "Should {a} {v} {b}?"))
    return frame.format(a=a, v=verb, b=b), frame.format(a=b, v=verb, b=a)


def modal(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    a, b = rng.sample(("Can I", "Should I", "Do I have to", "Will I"), 2)
    return f"{a} {t.verb} {t.obj}?", f"{b} {t.verb} {t.obj}?"


def tense(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    return rng.choice(
        (
            (f"When was {t.obj} {t.pp}?", f"When will {t.obj} be {t.pp}?"),
            (f"Has {t.obj} been {t.pp}?", f"Will {t.obj} be {t.pp}?"),
            (f"Why did I {t.verb} {t.obj}?", f"Why should I {t.verb} {t.obj}?"),
        )
    )


def scope(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    a, b = rng.choice(SCOPES)
    return f"How do I {t.verb} {t.obj} {a}?", f"How do I {t.verb} {t.obj} {b}?"


def version(d: Domain, rng: Rng) -> Pair:
    q, a, b = rng.choice(d.versions)
    return q.format(v=a), q.format(v=b)


def third_person(verb: str) -> str:
    head, _, rest = verb.partition(" ")
    if head.endswith(("s", "sh", "ch", "x", "z")):
        head += "es"
    elif head.endswith("y") and head[-2:-1] not in tuple("aeiou"):
        head = head[:-1] + "ies"
    else:
        head += "s"
    return f"{head} {rest}".strip()


def comparative(adj: str) -> str:
    if len(adj) > 5:
        return f"more {adj}"
    if adj.endswith("y"):
        return adj[:-1] + "ier"
    if adj.endswith("e"):
        return adj + "r"
    if len(adj) <= 4 and adj[-1] not in "aeiouwy" and adj[-2] in "aeiou" and adj[-3] not in "aeiou":
        return adj + adj[-1] + "er"
    return adj + "er"


def pronoun_role_swap(d: Domain, rng: Rng) -> Pair:
    _, verb, b = rng.choice(d.roles)
    return rng.choice(
        (
            (f"Can I {verb} {b}?", f"Can {b} {verb} me?"),
            (f"What happens if I {verb} {b}?", f"What happens if {b} {third_person(verb)} me?"),
            (f"Is it legal for me to {verb} {b}?", f"Is it legal for {b} to {verb} me?"),
            (f"When should we {verb} {b}?", f"When should {b} {verb} us?"),
            (f"Why would someone {verb} {b}?", f"Why would {b} {verb} someone?"),
        )
    )


def conversion_direction(d: Domain, rng: Rng) -> Pair:
    _, a, b = rng.choice(d.unit_q)
    n = rng.choice((5, 20, 100, 500))
    frame = rng.choice(("What is {n} {a} in {b}?", "How many {b} is {n} {a}?", "How many {b} are there in {n} {a}?"))
    return frame.format(n=n, a=a, b=b), frame.format(n=n, a=b, b=a)


def comparative_antonym(d: Domain, rng: Rng) -> Pair:
    subject, adj, _, anti = rng.choice(d.adjs)
    frame = rng.choice(("How do I make {s} {c}?", "Why is {s} {c} than before?", "Is {s} getting {c}?"))
    return frame.format(s=subject, c=comparative(adj)), frame.format(s=subject, c=comparative(anti))


def aspect(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    frame = rng.choice(("I {x} {o}, what happens next?", "I {x} {o} and now it asks for a code, is that normal?"))
    done = t.pp if t.pp.endswith("ed") else f"have {t.pp}"  # "I deleted", "I have hidden"
    return frame.format(x=done, o=t.obj), frame.format(x=f"am {gerund(t.verb)}", o=t.obj)


def clause_reorder(d: Domain, rng: Rng) -> Pair:
    t = rng.choice(d.tasks)
    _, _, b = rng.choice(d.roles)
    return rng.choice(
        (
            (f"When I {t.verb} {t.obj}, will {b} be notified?", f"Will {b} be notified when I {t.verb} {t.obj}?"),
            (f"If I {t.verb} {t.obj}, what happens?", f"What happens if I {t.verb} {t.obj}?"),
            (f"I want to {t.verb} {t.obj}. How do I do it?", f"How do I {t.verb} {t.obj}? I want to do it."),
        )
    )


PARAPHRASES: dict[str, Callable[[Domain, Rng], Pair]] = {
    "reorder": reorder,
    "politeness": politeness,
    "synonym": synonym,
    "typo": typo_pair,
    "rewording": rewording,
    "voice": voice,
    "abbreviation": abbreviation,
    "contraction": contraction,
    "filler": filler,
    "casing_punct": casing_punct,
    "clause_reorder": clause_reorder,
}
CONTRASTS: dict[str, Callable[[Domain, Rng], Pair]] = {
    "negation": negation,
    "antonym": antonym,
    "number": number_pair,
    "date": date,
    "time_frame": time_frame,
    "unit": unit,
    "entity": entity,
    "language": language,
    "comparison_swap": comparison_swap,
    "added_constraint": added_constraint,
    "specific_vs_general": specific_vs_general,
    "direction": direction,
    "quantity_word": quantity_word,
    "role_swap": role_swap,
    "modal": modal,
    "tense": tense,
    "scope": scope,
    "version": version,
    "pronoun_role_swap": pronoun_role_swap,
    "conversion_direction": conversion_direction,
    "comparative_antonym": comparative_antonym,
    "aspect": aspect,
}


def generate(seed: int = 11, per_class: int = 2) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    seen: set[tuple[str, str]] = set()
    for d in DOMAINS:
        for classes, expect in ((PARAPHRASES, "hit"), (CONTRASTS, "miss")):
            for category, make in classes.items():
                made = tries = 0
                while made < per_class and tries < 20:
                    tries += 1
                    a, b = make(d, rng)
                    cached, query = (a, b) if rng.random() < 0.5 else (b, a)
                    if a == b or (cached, query) in seen:
                        continue
                    seen.add((cached, query))
                    made += 1
                    rows.append(
                        {
                            "id": len(rows) + 1,
                            "domain": d.name,
                            "category": category,
                            "cached": cached,
                            "query": query,
                            "expect": expect,
                            "split": "test" if d.name in TEST_DOMAINS else "tune",
                        }
                    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = generate(args.seed, args.per_class)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} pairs to {args.out}")


if __name__ == "__main__":
    main()
