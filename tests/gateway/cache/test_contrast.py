"""Contrast checks: contrast pairs are refused, paraphrases pass."""

from __future__ import annotations

import pytest

from pilothouse.gateway.cache.contrast import check, features

REFUSED = [
    # the examples
    ("How do I enable X?", "How do I disable X?", "opposites"),
    ("How do I enable SSO?", "How do I turn off SSO?", "opposites"),
    ("What is 7 times 8?", "What is 7 times 9?", "numbers"),
    # negation
    ("Is it safe to run this migration?", "Is it not safe to run this migration?", "negation"),
    ("Why does the build pass?", "Why doesn't the build pass?", "negation"),
    ("Show users with a profile photo", "Show users without a profile photo", "negation"),
    # opposites and word-built opposites
    ("How do I install the agent?", "How do I uninstall the agent?", "opposites"),
    ("Turn the alerts on", "Turn the alerts off", "opposites"),
    ("How do I turn notifications on?", "How do I turn notifications off?", "opposites"),
    ("Sort the table in ascending order", "Sort the table in descending order", "opposites"),
    ("How do I encode a URL?", "How do I decode a URL?", "opposites"),
    ("What are the pros of remote work?", "What are the cons of remote work?", "opposites"),
    ("Import my bookmarks", "Export my bookmarks", "opposites"),
    # numbers, incl. number words and ordinals
    ("Give me 3 ideas", "Give me 4 ideas", "numbers"),
    ("Give me three ideas", "Give me 4 ideas", "numbers"),
    ("Who was the second president?", "Who was the third president?", "numbers"),
    ("What is 2 to the power of 10?", "What is 10 to the power of 2?", "numbers"),
    ("Split 1,000 into 4 parts", "Split 1,000 into 5 parts", "numbers"),
    # dates and times
    ("What's on my calendar today?", "What's on my calendar tomorrow?", "dates"),
    ("Revenue for March 2023", "Revenue for April 2023", "dates"),
    ("Book the room for Tuesday", "Book the room for Thursday", "dates"),
    ("Plan a trip next week", "Plan a trip next month", "dates"),
    ("Wake me at 7am", "Wake me at 7pm", "dates"),
    # named entities
    ("How do I deploy to AWS?", "How do I deploy to GCP?", "names"),
    ("What is the population of Brazil?", "What is the population of Chile?", "names"),
    ("Is PostgreSQL faster than MySQL?", "Is MySQL faster than PostgreSQL?", "names"),
    ("Flights from Paris to Rome", "Flights from Rome to Paris", "names"),
    ("Explain 'eventual consistency'", "Explain 'strong consistency'", "names"),
    # units
    ("Convert 30 degrees Celsius to Fahrenheit", "Convert 30 degrees Fahrenheit to Celsius", "units"),
    ("Is 16 GB of memory enough?", "Is 16 MB of memory enough?", "units"),
    ("How far is 10 km?", "How far is 10 miles?", "units"),
    ("Price in $ please: 20", "Price in € please: 20", "units"),
]

ACCEPTED = [
    ("How do I enable X?", "How can I enable X?"),
    ("How do I turn on dark mode?", "How can I enable dark mode?"),
    ("How do I switch off the alarm?", "How can I disable the alarm?"),
    ("What's the capital of Italy?", "What is the capital city of Italy?"),
    ("Give me three ideas for a party", "Give me 3 ideas for a party"),
    ("List twenty-one prime numbers", "List 21 prime numbers"),
    ("Why won't my laptop boot?", "Why doesn't my laptop boot?"),
    ("Explain recursion", "What is recursion?"),
    ("Summarize this article about Python", "Give me a summary of this article about python"),
    ("How do I delete my account?", "How can I remove my account?"),
    ("What is 2 + 2?", "What's 2+2?"),
]


@pytest.mark.parametrize(("query", "cached", "refusing_check"), REFUSED)
def test_contrast_pairs_are_refused(query: str, cached: str, refusing_check: str) -> None:
    verdict = check(query, cached)
    assert not verdict.ok, (query, cached)
    assert verdict.reason is not None and verdict.reason.startswith(refusing_check), verdict.reason
    assert not check(cached, query).ok  # symmetric


@pytest.mark.parametrize(("query", "cached"), ACCEPTED)
def test_paraphrases_pass(query: str, cached: str) -> None:
    verdict = check(query, cached)
    assert verdict.ok, verdict.reason
    assert check(cached, query).ok


def test_features() -> None:
    f = features("On Monday, convert 3.50 USD and twenty-five km for Alice's iPhone 15 at 9am, not later")
    assert f.numbers == ("3.5", "25", "15", "9")
    assert f.units == ("usd", "km")
    assert f.dates == ("mon", "am")
    assert f.negations == 1
    assert "alice" in f.strong and "iphone" in f.strong
    assert "monday" not in f.strong  # a weekday, not a name


def test_first_word_capitals_are_weak_hints() -> None:
    # A capitalised first word that is not a question word counts as a name only if both texts have one.
    assert check("Kubernetes is slow, why?", "Why is kubernetes slow?").ok
    assert not check("Kubernetes or Nomad?", "Nomad or Kubernetes?").ok  # order of names
    assert not check("Ubuntu install steps", "Debian install steps").ok


def test_reordered_units_are_refused_too() -> None:
    # Units compare in order so that "Celsius to Fahrenheit" is not "Fahrenheit to Celsius"; the price is that
    # a paraphrase naming them the other way round is refused (a miss, never a wrong answer).
    assert not check("Convert 10 km to miles", "How many miles is 10 kilometers?").ok
