"""Argument rules: domains, path prefixes, bounds, enums, patterns, lengths; the tricks each must not let by."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.tools.constraints import RuleError, parse_rule, parse_rule_text, parse_rules

SECRET = "sk-live-0123456789abcdef"


def check(rule: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    return parse_rule(rule).check(arguments)


DOMAINS = {"arg": "url", "domains": ["example.com", "*.example.org"]}


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a?b=c", "http://EXAMPLE.com.", "https://docs.example.org/x", "https://a.b.example.org:8443/"],
)
def test_urls_on_the_allowed_domains_pass(url: str) -> None:
    assert check(DOMAINS, {"url": url}) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://evil.test/", "outside the allowed domains"),
        ("https://example.org/", "outside the allowed domains"),  # the wildcard is for subdomains only
        ("https://example.com.evil.test/", "outside the allowed domains"),
        ("https://notexample.com/", "outside the allowed domains"),
        ("https://example.com@evil.test/", "outside the allowed domains"),  # userinfo trick
        ("https://evil.test\\@example.com/", "not a plain URL"),  # backslash: hosts disagree between parsers
        ("https://example.com /x", "not a plain URL"),
        ("javascript:alert(1)//example.com", "allowed scheme"),
        ("file:///etc/passwd", "allowed scheme"),
        ("https://example.com:99999/", "not a plain URL"),
        ("https:///path", "has no host"),
        (42, "not a plain URL"),
    ],
)
def test_urls_elsewhere_are_refused(url: Any, says: str) -> None:
    problem = check(DOMAINS, {"url": url})
    assert problem is not None and says in problem and problem.startswith("argument 'url'")


def test_schemes_can_be_narrowed() -> None:
    rule = {**DOMAINS, "schemes": ["https"]}
    assert check(rule, {"url": "https://example.com"}) is None
    assert "allowed scheme" in (check(rule, {"url": "http://example.com"}) or "")


PATHS = {"arg": "path", "path_prefixes": ["/srv/reports/"]}


@pytest.mark.parametrize("path", ["/srv/reports/q3.txt", "/srv/reports", "/srv/reports/./a/../b.txt"])
def test_paths_under_a_prefix_pass(path: str) -> None:
    assert check(PATHS, {"path": path}) is None


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/srv/reports/../secrets", "outside"),
        ("/srv/reports2/x", "outside"),
        ("/etc/passwd", "outside"),
        ("../srv/reports/x", "climbs out"),
        ("/srv/reports\\..\\x", "not a plain path"),
        ("/srv/reports/x\x00.txt", "not a plain path"),
        ("", "not a plain path"),
    ],
)
def test_paths_outside_are_refused(path: str, says: str) -> None:
    assert says in (check(PATHS, {"path": path}) or "")


def test_bounds_enums_patterns_and_lengths() -> None:
    amount = {"arg": "amount", "min": 0, "max": 100}
    assert check(amount, {"amount": 100}) is None
    assert "above the maximum 100" in (check(amount, {"amount": 100.5}) or "")
    assert "below the minimum 0" in (check(amount, {"amount": -1}) or "")
    assert "not a number" in (check(amount, {"amount": "50"}) or "")
    assert "not a number" in (check(amount, {"amount": True}) or "")
    currency = {"arg": "currency", "enum": ["USD", "EUR", 1]}
    assert check(currency, {"currency": "EUR"}) is None
    assert "not one of the allowed values" in (check(currency, {"currency": "GBP"}) or "")
    assert "not one of the allowed values" in (check(currency, {"currency": True}) or "")  # true is not 1
    code = {"arg": "code", "pattern": "[A-Z]{3}"}
    assert check(code, {"code": "ABC"}) is None
    assert check(code, {"code": "ABCD"}) is not None  # the whole value must match
    short = {"arg": "to", "max_length": 2}
    assert check(short, {"to": ["a", "b"]}) is None and check(short, {"to": ["a", "b", "c"]}) is not None


def test_a_failure_never_quotes_the_value() -> None:
    for rule in (DOMAINS, PATHS, {"arg": "url", "enum": ["x"]}, {"arg": "url", "pattern": "x"}):
        problem = check(rule, {"url": SECRET, "path": SECRET})
        assert problem is not None and SECRET not in problem


def test_wildcards_check_every_item_and_absent_arguments_are_not_checked() -> None:
    rule = {"arg": "recipients.*.email", "pattern": r"[^@]+@example\.com"}
    ok = {"recipients": [{"email": "a@example.com"}, {"email": "b@example.com"}]}
    assert check(rule, ok) is None
    bad = {"recipients": [{"email": "a@example.com"}, {"email": "b@evil.test"}]}
    assert (check(rule, bad) or "").startswith("argument 'recipients[1].email'")
    assert check(rule, {}) is None
    assert check({"arg": "meta.*", "max": 3}, {"meta": {"a": 1, "b": 9}}) == "argument 'meta.b' is above the maximum 3"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"domains": ["a.com"]}, "'arg'"),
        ({"arg": "u"}, "name at least one check"),
        ({"arg": "u", "domainz": ["a.com"]}, "unknown check(s) domainz"),
        ({"arg": "u", "domains": []}, "non-empty list"),
        ({"arg": "u", "domains": ["http://a.com"]}, "not a domain name"),
        ({"arg": "u", "max": "ten"}, "'max' must be a number"),
        ({"arg": "u", "pattern": "("}, "not a regular expression"),
        ({"arg": "u", "max_length": -1}, "whole number"),
    ],
)
def test_bad_rules_are_refused(raw: dict[str, Any], says: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(raw)
    assert says in str(caught.value)


def test_rules_round_trip_and_the_command_line_form() -> None:
    rules = parse_rules([DOMAINS, PATHS, {"arg": "amount", "max": 100}])
    assert parse_rules([r.to_dict() for r in rules]) == rules
    assert parse_rule_text("url:domains=example.com,*.example.org") == parse_rule(DOMAINS)
    assert parse_rule_text("amount:min=0;max=99.5") == parse_rule({"arg": "amount", "min": 0, "max": 99.5})
    assert parse_rule_text("n:enum=1,true,x").enum == (1, True, "x")
    with pytest.raises(RuleError, match="ARG:CHECK=VALUE"):
        parse_rule_text("amount")
    with pytest.raises(RuleError, match="not a check"):
        parse_rule_text("amount:most=3")
