"""The fixed development/held-out split of every labelled set used to build or tune a guard.

Held-out rows are never used for training, for choosing thresholds or features, or for looking at errors
while tuning; benchmarks report them apart (`bench/guard_bench.py --split holdout`), once a model is frozen.

A row's side is decided by a hash of a *group key*, not of the whole text, so near-duplicates (jailbreak
templates that differ in a few words, PII sentences generated from one template) fall on the same side and
the held-out figures are not inflated by copies of training rows. The key is the row's first eight words,
lower-cased, with punctuation dropped, unless the caller passes a better one (a template id).
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

Side = Literal["dev", "holdout"]

HOLDOUT_PERCENT = 30
"""About 30% of each set is held out."""

_WORD = re.compile(r"[^\W_]+")


def group_key(text: str) -> str:
    """The first eight words of `text`, lower-cased, punctuation dropped."""
    return " ".join(_WORD.findall(text.lower())[:8])


def side(
    text: str, *, key: str | None = None, salt: str = "pilothouse-guards-v1", percent: int = HOLDOUT_PERCENT
) -> Side:
    """`holdout` for about `percent` of groups (fixed for ever: changing the salt or the percent of a set
    re-splits it, which would put held-out rows into training; do not)."""
    group = key if key is not None else group_key(text)
    digest = hashlib.sha256(f"{salt}\x00{group}".encode()).digest()
    return "holdout" if int.from_bytes(digest[:8], "big") % 100 < percent else "dev"
