"""The second round of the contrast check (issue 11): who does what to whom (pronouns included), conversions
the other way, comparatives of opposites, past vs progressive, doing it oneself, misspelt closed-class words,
polite modal frames; and what each must leave alone. Sentences written for these tests, not taken from a
pair set."""

from __future__ import annotations

import pytest

from pilothouse.gateway.cache.contrast import check
from pilothouse.gateway.cache.contrast_antonyms import opposite
from pilothouse.gateway.cache.contrast_morphology import comparative_bases, lemma, verb_form
from pilothouse.gateway.cache.contrast_spelling import correction

REFUSED = [
    # a pronoun and a noun trade places around the verb
    ("Can I fire my accountant without notice?", "Can my accountant fire me without notice?", "role_swap"),
    ("What if someone copies me in the exam?", "What if I copy someone in the exam?", "role_swap"),
    ("Is it rude if I interrupt my boss in meetings?", "Is it rude if my boss interrupts me in meetings?", "role_swap"),
    (
        "Should we pay the contractor before the inspection?",
        "Should the contractor pay us before the inspection?",
        "role_swap",
    ),
    # the quantity is given in the other unit
    ("What is 30 degrees Celsius in Fahrenheit?", "What is 30 degrees Fahrenheit in Celsius?", "direction"),
    ("How many euros is 20 dollars?", "How many dollars is 20 euros?", "direction"),
    ("How many MB are there in 3 GB?", "How many GB are there in 3 MB?", "unit"),
    # comparatives and superlatives of opposites
    ("How do I make my bread softer?", "How do I make my bread harder?", "opposites"),
    ("Why is my road bike heavier this year?", "Why is my road bike lighter this year?", "opposites"),
    ("Which route is the shortest?", "Which route is the longest?", "opposites"),
    # a finished event and one going on now
    ("My phone froze, what should I do?", "My phone is freezing, what should I do?", "tense"),
    ("I have paid the deposit, what happens next?", "I am paying the deposit, what happens next?", "tense"),
    ("I turned on roaming abroad, is that a problem?", "I am turning on roaming abroad, is that a problem?", "tense"),
    # "using" as a verb stays
    ("How do I stop using my credit card?", "How do I stop my credit card?", "unaligned"),
    # a British double l is one word ("cancelled" / "canceled"), a short stem is not ("filled" / "filed")
    ("Who filled the report?", "Who filed the report?", "unaligned"),
    # doing it oneself is a constraint
    ("How do I replace the cabin filter myself?", "How do I replace the cabin filter?", "reflexive"),
]

ACCEPTED = [
    # a clause moved to the other end moves words across the verb one way only
    ("When I cancel my order, will the seller be told?", "Will the seller be told when I cancel my order?"),
    ("If I miss a payment, what happens?", "What happens if I miss a payment?"),
    ("I forgot my PIN, how do I reset it?", "How do I reset my PIN? I forgot it"),
    ("Can I get a refund if my trip is cancelled?", "Can I get a refund if my trip is canceled?"),
    # the passive keeps its participle
    ("Can my flight be cancelled online?", "Can I cancel my flight online?"),
    # the quantity stays in its unit when the question is reordered
    ("How many calories are in 100 grams of oats?", "100 grams of oats: how many calories?"),
    # misspelt closed-class words
    ("Can I use my laptop during the flight?", "Can I use my laptop duriing the flight?"),
    ("How much should I tip in Spain?", "How much shoud I tip in Spain?"),
    ("Can I pay with another card?", "Can I pay wiht anoter card?"),
    # polite modal frames put to the assistant
    ("How do I prune roses?", "Would you mind explaining how to prune roses?"),
    ("How do I prune roses?", "I'd be grateful if you could tell me how to prune roses."),
    ("How do I prune roses?", "Could you please walk me through how to prune roses?"),
    ("Can I change my seat after check-in?", "Would it be possible to change my seat after check-in?"),
    # "using" as a preposition
    ("How do I center a div in CSS?", "How do I center a div using CSS?"),
    ("How do I unclog a drain without chemicals?", "How can I unclog a drain without using chemicals?"),
]


@pytest.mark.parametrize(("query", "cached", "kind"), REFUSED)
def test_refused(query: str, cached: str, kind: str) -> None:
    verdict = check(query, cached)
    assert not verdict.ok, (query, cached)
    assert verdict.kind == kind, verdict
    assert verdict.reason
    assert not check(cached, query).ok


@pytest.mark.parametrize(("query", "cached"), ACCEPTED)
def test_accepted(query: str, cached: str) -> None:
    assert check(query, cached).ok, check(query, cached).reason
    assert check(cached, query).ok, check(cached, query).reason


def test_role_swap_reasons_name_the_arguments_and_the_verb() -> None:
    verdict = check("Can I fire my accountant?", "Can my accountant fire me?")
    assert verdict.reason is not None and "'fire'" in verdict.reason and "'accountant'" in verdict.reason


def test_possessives_are_not_arguments() -> None:
    assert check("Can I change my password?", "Can I change your password?").ok  # "my" / "your": not moved
    assert check("Should I call her?", "Should she call me?").kind == "role_swap"  # "her" alone: an argument


def test_word_forms() -> None:
    assert verb_form("overheated") == "past" and verb_form("overheating") == "ing"
    assert verb_form("froze") == "past" and verb_form("children") is None and verb_form("string") is None
    assert "thin" in comparative_bases("thinner") and comparative_bases("heavier") == ("heavy",)
    assert comparative_bases("cat") == ()
    assert opposite("thinner", "thicker") and opposite("cheapest", "most") is False
    assert not opposite("bigger", "larger")
    assert lemma("hidden") == lemma("hiding")


def test_spelling_corrections_are_closed_class_only() -> None:
    assert correction("shoud") == "should" and correction("duriing") == "during"
    assert correction("yaer") == "year"  # a swap of two letters in a closed-class noun
    assert correction("lifter") is None  # one letter from "liter", but a content word
    assert correction("should") is None  # spelt right
    assert correction("wich") is None  # "which" or "with": not sure, left alone
