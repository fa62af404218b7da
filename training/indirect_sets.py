"""The two used hand-written indirect sets (bench/data/indirect_holdout.jsonl, indirect_holdout2.jsonl) as
development data, with a fixed dev/held-out split.

Both sets were written by people who never saw the detector, then run once and marked USED; they are now
the most realistic training data there is. 30% of each (set, class) is held out, chosen by a hash of the
document id (each set was checked for near-duplicates when written: no two documents share more than 0.1 of
their word 5-grams, so the id is a sound group key). Held-out rows are never read for training, threshold
choice or error analysis; `bench/guard_injection_bench.py --set indirect_sets_heldout` reports them, per class
only, once per frozen model. Changing the salt or the percent re-splits the sets: do not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["HELDOUT_PERCENT", "SALT", "SET_FILES", "SetDoc", "read_set", "set_docs"]

DATA = Path(__file__).resolve().parents[1] / "bench" / "data"
SET_FILES = {"set1": DATA / "indirect_holdout.jsonl", "set2": DATA / "indirect_holdout2.jsonl"}
SALT = "indirect-sets-1-2-v1"
HELDOUT_PERCENT = 30

Part = Literal["dev", "heldout"]


@dataclass(frozen=True, slots=True)
class SetDoc:
    id: str
    text: str
    label: int
    cls: str
    domain: str
    carrier: str
    origin: str
    part: Part


def read_set(path: Path, origin: str = "") -> list[SetDoc]:
    """Rows of a JSONL file with the sets' schema (`id`, `text`, `label` attack/benign or 1/0, `class`,
    `domain`, `carrier`); every row on the `dev` part."""
    out: list[SetDoc] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        raw = row["label"]
        label = {"attack": 1, "benign": 0}[raw] if isinstance(raw, str) else int(raw)
        cls = str(row.get("class") or ("attack" if label else "benign"))
        out.append(
            SetDoc(
                str(row.get("id", n)),
                str(row["text"]),
                label,
                cls,
                str(row.get("domain", "-")),
                str(row.get("carrier", "-")),
                origin or path.stem,
                "dev",
            )
        )
    return out


def _rank(doc_id: str) -> bytes:
    return hashlib.sha256(f"{SALT}\x00{doc_id}".encode()).digest()


def set_docs() -> list[SetDoc]:
    """Every document of sets 1 and 2 with its part: within each (set, class), the 30% whose hashed ids come
    first are `heldout` (stratified by class, fixed for ever)."""
    out: list[SetDoc] = []
    for origin, path in SET_FILES.items():
        groups: dict[str, list[SetDoc]] = {}
        for doc in read_set(path, origin):
            groups.setdefault(f"{doc.label}|{doc.cls}", []).append(doc)
        for docs in groups.values():
            ordered = sorted(docs, key=lambda d: _rank(f"{origin}:{d.id}"))
            held = round(len(ordered) * HELDOUT_PERCENT / 100)
            out.extend(
                SetDoc(d.id, d.text, d.label, d.cls, d.domain, d.carrier, d.origin, "heldout" if i < held else "dev")
                for i, d in enumerate(ordered)
            )
    return out
