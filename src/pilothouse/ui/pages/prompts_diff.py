"""Side-by-side rows from the unified diffs the prompts API answers (`prompts/registry/diff.py`).

The API's diff of two versions is a unified diff per message (or of a text prompt). The diff page shows it in
two columns, the older version on the left and the newer on the right: unchanged lines on both sides, a
removed line on the left in `<del>`, an added line on the right in `<ins>`, and a changed line on both sides
with only the words that changed marked, so a one-word edit in a long instruction is easy to see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from markupsafe import Markup, escape

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the two columns. `kind`: context (the same on both sides), change (differs; either side may
    be empty for a line only one version has) or gap (lines between hunks were left out)."""

    kind: str
    left_no: int | None
    left: Markup | None
    right_no: int | None
    right: Markup | None


def _words(old: str, new: str) -> tuple[Markup, Markup]:
    """The two lines with the words only one of them has marked (`<del>` on the left, `<ins>` on the right)."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        before, after = escape("".join(a[i1:i2])), escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(before)
            right.append(after)
            continue
        if before:
            left.append(f"<del>{before}</del>")
        if after:
            right.append(f"<ins>{after}</ins>")
    return Markup("".join(left)), Markup("".join(right))


def _flush(removed: list[tuple[int, str]], added: list[tuple[int, str]], rows: list[Row]) -> None:
    for i in range(max(len(removed), len(added))):
        old = removed[i] if i < len(removed) else None
        new = added[i] if i < len(added) else None
        if old is not None and new is not None:
            left, right = _words(old[1], new[1])
            rows.append(Row("change", old[0], left, new[0], right))
        elif old is not None:
            rows.append(Row("change", old[0], Markup(f"<del>{escape(old[1])}</del>"), None, None))
        elif new is not None:
            rows.append(Row("change", None, None, new[0], Markup(f"<ins>{escape(new[1])}</ins>")))
    removed.clear()
    added.clear()


def side_by_side(unified: str) -> list[Row]:
    """The rows of a unified diff (headers dropped); an empty list for an empty diff."""
    rows: list[Row] = []
    removed: list[tuple[int, str]] = []
    added: list[tuple[int, str]] = []
    left_no = right_no = 0
    in_hunk = False
    for raw in unified.splitlines():
        hunk = _HUNK.match(raw)
        if hunk:
            _flush(removed, added, rows)
            if in_hunk:
                rows.append(Row("gap", None, None, None, None))
            left_no, right_no = int(hunk.group(1)), int(hunk.group(2))
            in_hunk = True
            continue
        if not in_hunk or raw.startswith("\\"):
            continue  # the ---/+++ file headers; "\ No newline at end of file"
        marker, text = raw[:1], raw[1:]
        if marker == "-":
            removed.append((left_no, text))
            left_no += 1
        elif marker == "+":
            added.append((right_no, text))
            right_no += 1
        else:
            _flush(removed, added, rows)
            line = escape(text)
            rows.append(Row("context", left_no, Markup(line), right_no, Markup(line)))
            left_no += 1
            right_no += 1
    _flush(removed, added, rows)
    return rows
