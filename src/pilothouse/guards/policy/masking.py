"""Replacing what a scanner found in a text: `[KIND]` (a mask for scanners that do not redact themselves) or
`<KIND:hash>` (storage `hash` mode). Used by the engine (a redact rule whose scanner has no mask) and by
storage redaction."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from pilothouse.guards.scanner import Finding


def replace_spans(text: str, findings: Sequence[Finding], *, hashed: bool) -> str:
    """`text` with each finding's span replaced (`[KIND]`, or `<KIND:hash>`); overlapping spans merge."""
    spans = sorted((f.start, f.end, f.kind) for f in findings if 0 <= f.start < f.end <= len(text))
    merged: list[list[Any]] = []
    for start, end, kind in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, kind])
    out, last = [], 0
    for start, end, kind in merged:
        value = text[start:end]
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]
        out.append(text[last:start])
        out.append(f"<{kind}:{digest}>" if hashed else f"[{kind}]")
        last = end
    out.append(text[last:])
    return "".join(out)
