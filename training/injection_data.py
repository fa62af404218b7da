"""Loading the injection development sets (`../shared/data/injection/` and the benign documents used for
indirect mode), labelled and split with `training.splits.side` (never train or tune on `holdout` rows).

Each row is a `Sample`: the text, its label (1: an attack, 0: benign, -1: neither, reported apart), the
source it came from, and its side of the fixed split. HarmBench rows are harmful *requests*, not injections:
they get label -1 and are reported separately (the toxicity and denied-topics scanners are the guards for
them). BIPIA rows are instructions meant to be planted in documents: on their own most read as ordinary
requests ("What is the capital of Brazil?"), so they are attacks only in indirect mode, planted in a
benign document (`planted`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.splits import Side, side

__all__ = ["DATA_DIR", "Sample", "carriers", "direct_samples", "indirect_samples", "planted"]

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
"""`../shared/data` of the repository's checkout (override with the `data_dir` arguments)."""


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    label: int
    source: str
    side: Side


def _sample(text: str, label: int, source: str) -> Sample:
    return Sample(text, label, source, side(text))


def _injection(data_dir: Path, name: str) -> Path:
    return data_dir / "injection" / name


def direct_samples(data_dir: Path = DATA_DIR) -> list[Sample]:
    """Prompts as a caller sends them: in-the-wild jailbreaks (1), benign prompts by source and NotInject
    hard negatives and HaluEval user queries (0), HarmBench requests (-1)."""
    rows: list[Sample] = []
    for text in json.loads(_injection(data_dir, "inthewild_jailbreaks.json").read_text(encoding="utf-8")):
        rows.append(_sample(text, 1, "inthewild"))
    for line in _injection(data_dir, "benign_prompts.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append(_sample(row["text"], 0, f"benign_{row['source']}"))
    for row in json.loads(_injection(data_dir, "notinject_benign_hard_negatives.json").read_text(encoding="utf-8")):
        rows.append(_sample(row["prompt"], 0, "notinject"))
    for query in _halueval(data_dir, "user_query"):
        rows.append(_sample(query, 0, "halueval_query"))
    for line in _injection(data_dir, "harmbench_prompts.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(_sample(line.strip(), -1, "harmbench"))
    return rows


def _halueval(data_dir: Path, field: str) -> Iterator[str]:
    path = data_dir / "eval" / "halueval_general_dev.jsonl"
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            text = str(json.loads(line)[field]).strip()
            if text and text not in seen:
                seen.add(text)
                yield text


def _cisi(data_dir: Path) -> Iterator[str]:
    """The abstracts (`.W` fields) of the CISI collection."""
    current: list[str] | None = None
    for line in (data_dir / "rag" / "cisi" / "CISI.ALL").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("."):
            if current:
                yield " ".join(" ".join(current).split())
            current = [] if line.startswith(".W") else None
        elif current is not None:
            current.append(line)
    if current:
        yield " ".join(" ".join(current).split())


def carriers(data_dir: Path = DATA_DIR) -> list[Sample]:
    """Benign documents (label 0): BIPIA emails, CISI abstracts, HaluEval answers written by a chat model."""
    rows: list[Sample] = []
    for line in (data_dir / "rag" / "bipia_email_qa.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(_sample(json.loads(line)["context"], 0, "doc_email"))
    rows.extend(_sample(text, 0, "doc_cisi") for text in _cisi(data_dir))
    rows.extend(_sample(text, 0, "doc_halueval_answer") for text in _halueval(data_dir, "chatgpt_response"))
    return rows


def indirect_attacks(data_dir: Path = DATA_DIR) -> list[Sample]:
    """BIPIA's text and code attack instructions (label 1), and HarmBench requests (-1), on their own."""
    rows: list[Sample] = []
    for name, source in (("bipia_text_attacks.json", "bipia_text"), ("bipia_code_attacks.json", "bipia_code")):
        for attacks in json.loads(_injection(data_dir, name).read_text(encoding="utf-8")).values():
            rows.extend(_sample(text, 1, source) for text in attacks)
    return rows


def planted(document: str, attack: str, where: str) -> str:
    """`attack` planted in `document` at its `start`, `middle` (at a sentence end near the middle) or `end`."""
    if where == "start":
        return f"{attack}\n{document}"
    if where == "end":
        return f"{document}\n{attack}"
    middle = len(document) // 2
    cut = document.find(". ", middle)
    cut = middle if cut < 0 else cut + 1
    return f"{document[:cut]} {attack} {document[cut:]}"


def indirect_samples(split: Side, *, data_dir: Path = DATA_DIR, seed: int = 7, per_attack: int = 3) -> list[Sample]:
    """Documents of one side with and without planted attacks of the same side: each attack planted in
    `per_attack` random carriers (start, middle, end in turn); every carrier once on its own (label 0)."""
    docs = [d for d in carriers(data_dir) if d.side == split]
    attacks = [a for a in indirect_attacks(data_dir) if a.side == split]
    rng = random.Random(seed)
    rows = [Sample(d.text, 0, d.source, split) for d in docs]
    for attack in attacks:
        for i, doc in enumerate(rng.sample(docs, per_attack)):
            where = ("start", "middle", "end")[i % 3]
            rows.append(Sample(planted(doc.text, attack.text, where), attack.label, attack.source, split))
    return rows
