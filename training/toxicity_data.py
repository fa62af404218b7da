"""The toxicity training and evaluation data: ToxiGen's prompt files (hateful and neutral statements about
women, microsoft/TOXIGEN, MIT) parsed into single statements, and our self-written statements about other
groups (`training/data/toxicity_selfwritten.jsonl`, dev side only, never held out).

ToxiGen's prompt files hold, on each line, several statements written as `- statement` and separated by a
literal backslash-n; the 1,000 lines of each file draw on a pool of about 20 distinct statements, so after
splitting and de-duplication the set is small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training.splits import Side, side

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "toxicity"
SELF_WRITTEN = Path(__file__).resolve().parent / "data" / "toxicity_selfwritten.jsonl"


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    toxic: bool
    source: str
    """`toxigen` or `self-written`."""
    side: Side


def parse_toxigen(raw: str) -> list[str]:
    """The distinct statements of a ToxiGen prompt file, in first-seen order."""
    seen: dict[str, None] = {}
    for line in raw.splitlines():
        for item in line.split("\\n"):
            statement = item.strip()
            if statement.startswith("-"):
                statement = statement[1:].strip()
            if statement:
                seen.setdefault(statement, None)
    return list(seen)


def toxigen(directory: Path = SHARED) -> list[Example]:
    """ToxiGen hate (toxic) and neutral statements about women, each on the side `training.splits` gives it."""
    out = []
    for name, toxic in (("toxigen_hate_women.txt", True), ("toxigen_neutral_women.txt", False)):
        for text in parse_toxigen((directory / name).read_text(encoding="utf-8")):
            out.append(Example(text, toxic, "toxigen", side(text)))
    return out


def self_written(path: Path = SELF_WRITTEN) -> list[Example]:
    """Our own statements about other groups and everyday text; always on the dev side."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Example(r["text"], r["label"] == "toxic", "self-written", "dev") for r in rows]


def examples(split: Side, directory: Path = SHARED) -> list[Example]:
    """Every example on `split` (self-written ones only on dev)."""
    rows = toxigen(directory) + self_written()
    return [e for e in rows if e.side == split]
