"""The question-pair sets the quality part reads, in one shape.

Two file schemas: the older project sets (`semantic_pairs*.jsonl`: id, category, cached, query, expect "hit" or
"miss") and the newer ones (`cache_pairs_*.jsonl`: a, b, same, class, domain; `a` is the cached question, `b`
the query). Sets by name (`--sets`):

- existing: semantic_pairs.jsonl (203) and semantic_pairs_holdout.jsonl (83), the project's own sets;
- dev: cache_pairs_dev.jsonl, generated from templates (bench/cachebench/dev_pairs.py), reported per `split`
  (its `tune` domains, and the `test` domains kept apart from tuning);
- holdout: cache_pairs_holdout.jsonl (420 pairs, 15 domains), written by someone who never saw the check; held
  out from the first round of issue 11 (its figure is reported, so it is now *used*: no longer independent,
  but still never swept);
- holdout2: cache_pairs_holdout2.jsonl, a second independent set kept sealed for the final run of the second
  round (same schema); held out: never swept or tuned on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SET_FILES = {
    "existing": ("semantic_pairs.jsonl", "semantic_pairs_holdout.jsonl"),
    "dev": ("cache_pairs_dev.jsonl",),
    "holdout": ("cache_pairs_holdout.jsonl",),
    "holdout2": ("cache_pairs_holdout2.jsonl",),
}
HELD_OUT = {"cache_pairs_holdout", "cache_pairs_holdout2"}


@dataclass(frozen=True, slots=True)
class Pair:
    id: int | str
    cls: str
    domain: str
    cached: str
    query: str
    same: bool  # the cached answer is right for the query
    split: str | None = None  # a set's own division (the dev set: "tune" domains, "test" domains)


@dataclass(slots=True)
class PairSet:
    name: str  # the file's stem
    path: Path
    held_out: bool  # never swept or tuned on
    pairs: list[Pair]


def _truth(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "same", "hit", "1"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "different", "miss", "0"}:
        return False
    if isinstance(value, int):
        return value != 0
    raise ValueError(f"cannot read {value!r} as true or false")


def parse(row: dict[str, object], line: int) -> Pair:
    if "cached" in row:
        return Pair(
            id=row.get("id", line),  # type: ignore[arg-type]
            cls=str(row["category"]),
            domain=str(row.get("domain", "-")),
            cached=str(row["cached"]),
            query=str(row["query"]),
            same=_truth(row["expect"]),
            split=str(row["split"]) if "split" in row else None,
        )
    return Pair(
        id=row.get("id", line),  # type: ignore[arg-type]
        cls=str(row["class"]),
        domain=str(row.get("domain", "-")),
        cached=str(row["a"]),
        query=str(row["b"]),
        same=_truth(row["same"]),
        split=str(row["split"]) if "split" in row else None,
    )


def load(path: Path, *, held_out: bool | None = None) -> PairSet:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                pairs.append(parse(json.loads(line), number))
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
    held = path.stem in HELD_OUT if held_out is None else held_out
    return PairSet(path.stem, path, held, pairs)


def by_split(pair_set: PairSet) -> list[PairSet]:
    """A set whose rows carry `split`, as one set per split ("cache_pairs_dev[tune]"); others as they are."""
    splits = list(dict.fromkeys(p.split for p in pair_set.pairs))
    if splits == [None]:
        return [pair_set]
    return [
        PairSet(
            f"{pair_set.name}[{split}]",
            pair_set.path,
            pair_set.held_out,
            [p for p in pair_set.pairs if p.split == split],
        )
        for split in splits
    ]


def select(names: list[str], data_dir: Path) -> tuple[list[PairSet], list[str]]:
    """The sets named (keys of SET_FILES), and a note for each file that is missing."""
    sets, missing = [], []
    for name in names:
        if name not in SET_FILES:
            raise ValueError(f"unknown pair set {name!r}; choose from {', '.join(SET_FILES)}")
        for filename in SET_FILES[name]:
            path = data_dir / filename
            if path.exists():
                sets += by_split(load(path))
            else:
                missing.append(f"{name}: {path} not found, skipped")
    return sets, missing
