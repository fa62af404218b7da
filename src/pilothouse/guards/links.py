"""The `links` scanner: links in a text that the policy does not allow (OWASP LLM05: an answer rendered as
Markdown or HTML can carry a phishing link, a `javascript:` URL, or an image URL that sends data to an
attacker's server when the page loads).

Found: URLs with a scheme (`https://...`, `ftp://...`), `javascript:`/`data:`/`vbscript:`/`file:` URLs, and
bare `www.` addresses (taken as https). The host is what `urllib.parse` sees, so `https://trusted.com@evil.com`
is on evil.com; hosts are lower-cased, stripped of a trailing dot and compared in IDNA (punycode) form,
so `xn--` look-alikes of an allowed domain are not allowed. A domain entry allows or denies its subdomains.
Not found: bare domains without `www.` or a scheme (`evil.com/x`), and links split or encoded to hide them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pilothouse.guards.scanner import Finding, ScanContext, Verdict

REPLACEMENT = "[link removed]"
_URL = re.compile(
    r"(?<![\w.+-])(?:[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s<>\"'`]+"
    r"|(?:javascript|data|vbscript):[^\s<>\"'`]+"
    r"|www\.[^\s<>\"'`]+)",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?*_~"


@dataclass(frozen=True, slots=True)
class Link:
    start: int
    end: int
    url: str
    scheme: str
    host: str
    """Lower-case, IDNA form; "" when the URL has no host (`javascript:`, `data:`)."""


def _trim(url: str) -> str:
    """Drop trailing punctuation and unbalanced closing brackets (`(see https://x.org/a).`)."""
    while url:
        if (
            url[-1] in _TRAILING
            or (url[-1] == ")" and url.count("(") < url.count(")"))
            or (url[-1] == "]" and url.count("[") < url.count("]"))
        ):
            url = url[:-1]
        else:
            break
    return url


def _idna(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def find_links(text: str) -> list[Link]:
    """Every link in `text` with its span, scheme and host."""
    links = []
    for match in _URL.finditer(text):
        url = _trim(match.group())
        if not url:
            continue
        target = url if not url.lower().startswith("www.") else f"https://{url}"
        try:
            parts = urlsplit(target)
            host = parts.hostname or ""
        except ValueError:  # an unparseable authority ("http://[::1") is still a link to judge
            parts, host = urlsplit(""), ""
        scheme = (parts.scheme or target.split(":", 1)[0]).lower()
        links.append(Link(match.start(), match.start() + len(url), url, scheme, _idna(host)))
    return links


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(re.fullmatch(r"(?:0x[0-9a-f]+|\d+)", host))  # 0x7f000001, 2130706433: IPv4 in disguise
    return True


def _domains(option: Any, name: str) -> tuple[str, ...]:
    if option is None:
        return ()
    if isinstance(option, str) or not isinstance(option, Sequence):
        raise ValueError(f"`{name}` is a list of domain names")
    out = []
    for entry in option:
        if not isinstance(entry, str) or not entry.strip() or "/" in entry:
            raise ValueError(f"`{name}`: {entry!r} is not a domain name")
        out.append(_idna(entry.strip().lstrip("*").lstrip(".")))
    return tuple(out)


def _within(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


class LinksScanner:
    """Options: `allowed_domains` (when set, links to other hosts are disallowed), `denied_domains`,
    `allow_ip_hosts` (default false), `schemes` (allowed schemes, default http and https). Redacts each
    disallowed link as `[link removed]`."""

    name: ClassVar[str] = "links"
    redacts: ClassVar[bool] = True
    conformance_options: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        allowed_domains: Sequence[str] | None = None,
        denied_domains: Sequence[str] | None = None,
        allow_ip_hosts: bool = False,
        schemes: Sequence[str] = ("http", "https"),
    ) -> None:
        self.allowed_domains = _domains(allowed_domains, "allowed_domains") if allowed_domains is not None else None
        self.denied_domains = _domains(denied_domains, "denied_domains")
        self.allow_ip_hosts = bool(allow_ip_hosts)
        if isinstance(schemes, str) or not isinstance(schemes, Sequence) or not schemes:
            raise ValueError("`schemes` is a non-empty list such as ['https']")
        if not all(isinstance(s, str) and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*", s) for s in schemes):
            raise ValueError(f"`schemes`: {list(schemes)!r} are not all URL schemes")
        self.schemes = frozenset(s.lower() for s in schemes)

    def reason(self, link: Link) -> str | None:
        """Why `link` is disallowed (None: it is allowed)."""
        if link.scheme not in self.schemes:
            return f"scheme {link.scheme!r} not allowed"
        if not link.host:
            return "link without a host"
        if _is_ip(link.host) and not self.allow_ip_hosts:
            return "IP address host"
        if _within(link.host, self.denied_domains):
            return f"denied domain {link.host}"
        if self.allowed_domains is not None and not _within(link.host, self.allowed_domains):
            return f"domain {link.host} not allowed"
        return None

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        findings = []
        for link in find_links(text):
            why = self.reason(link)
            if why is not None:
                findings.append(Finding("disallowed_link", link.start, link.end, 1.0, why))
        if not findings:
            return Verdict(self.name, 0.0, (), text)
        pieces, cursor = [], 0
        for f in findings:
            pieces += [text[cursor : f.start], REPLACEMENT]
            cursor = f.end
        pieces.append(text[cursor:])
        return Verdict(self.name, 1.0, tuple(findings), "".join(pieces))
