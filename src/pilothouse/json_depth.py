"""How deeply JSON nests objects and arrays, measured without recursion (so safe on any input).

Depth counts containers: `"x"` is 0, `{"a": [1]}` is 2. The request boundary refuses bodies past
`max_json_depth` (server/body_guard.py) and the trace writer caps what it stores (tracing/repair.py),
because recursive consumers further in (JSON encoders, the database's JSON, hashing) fail far below
the depth a client can send.
"""

from __future__ import annotations

import re
from typing import Any

# A JSON string (skipped whole, escapes included) or a bracket: enough to measure nesting without parsing.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset(b"[{")
_QUOTE = ord('"')


def brackets_within(raw: bytes, limit: int) -> bool:
    """True when `raw` has at most `limit` opening brackets, so it cannot nest deeper (fast: no parsing)."""
    return raw.count(b"[") + raw.count(b"{") <= limit


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests objects and arrays more than `limit` levels deep."""
    if not isinstance(value, dict | list | tuple):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))
    return False


def raw_nesting_exceeds(raw: bytes, limit: int) -> bool:
    """The same measure on JSON text, without parsing it (so also for text a parser refuses)."""
    if brackets_within(raw, limit):
        return False
    depth = 0
    for match in _TOKENS.finditer(raw):
        char = raw[match.start()]
        if char == _QUOTE:
            continue
        if char in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
