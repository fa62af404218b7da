"""IP addresses, v4 and v6, validated by the standard library's `ipaddress`.

Candidates are runs of hex digits, dots and colons; each is kept only when `ipaddress` parses it (so
`999.1.1.1`, version strings such as `1.2.3` and times such as `12:30` are not addresses). Loopback,
unspecified and documentation-only examples are still reported: the scanner finds addresses, the policy
decides whether a private one matters.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from pilothouse.guards.scanner import Finding

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?![\w:])")

IP_SCORE = 0.85
_DIGIT = re.compile(r"\d")


def find_ip_addresses(text: str) -> Iterator[Finding]:
    """IPv4 and IPv6 addresses in `text` (an IPv6 zone or a v4 port suffix is not part of the span)."""
    for match in _IPV4.finditer(text) if _DIGIT.search(text) else ():
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        yield Finding("IP_ADDRESS", match.start(), match.end(), IP_SCORE, "IPv4 address")
    if text.count(":") < 2:  # an IPv6 address has at least two colons
        return
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if candidate.count(":") < 2 or candidate.strip(":") == "":
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield Finding("IP_ADDRESS", match.start(), match.end(), IP_SCORE, "IPv6 address")
