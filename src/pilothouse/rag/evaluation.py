"""Retrieval evaluation on a labelled set: queries, relevance judgements (qrels), and ranked results.

Metrics (binary relevance: a judged pair is relevant when its grade is > 0):
- `recall@k`: the share of a query's relevant documents found in its top k;
- `MRR`: the mean over queries of 1 / rank of the first relevant document (0 when none is retrieved);
- `nDCG@10`: discounted cumulative gain of the top 10 (gain = grade, log2 discount) over the ideal ordering.
Queries without a relevant document are left out of every mean (they cannot be scored).

`read_smart` reads the SMART format of the classic test collections (CISI, CACM, MED): records opened by
`.I <id>`, fields `.T` title, `.A` authors, `.W` text, `.X` cross-references, `.B` publication. `read_qrels`
reads their relevance file (`query doc [grade [score]]`, whitespace separated; CISI writes grade 0 for
every judged-relevant pair, so a listed pair counts as relevant with grade 1 unless `graded=True`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Qrels = dict[str, dict[str, int]]
"""query id -> {document id: grade > 0}."""
Run = Mapping[str, Sequence[str]]
"""query id -> document ids, best first."""


@dataclass(frozen=True, slots=True)
class SmartRecord:
    """One record of a SMART file."""

    id: str
    title: str
    authors: str
    text: str


def read_smart(path: Path) -> list[SmartRecord]:
    """Records of a SMART-format file (documents or queries), in file order."""
    records: list[SmartRecord] = []
    current: dict[str, list[str]] | None = None
    field = ""
    ident = ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(".I"):
            if current is not None:
                records.append(_record(ident, current))
            ident, current, field = line[2:].strip(), {}, ""
            continue
        if current is None:
            continue
        if len(line) >= 2 and line[0] == "." and line[1].isalpha() and line[2:].strip() == "":
            field = line[1]
            current.setdefault(field, [])
            continue
        if field:
            current[field].append(line)
    if current is not None:
        records.append(_record(ident, current))
    return records


def _record(ident: str, fields: dict[str, list[str]]) -> SmartRecord:
    def joined(key: str) -> str:
        return " ".join(" ".join(fields.get(key, [])).split())

    return SmartRecord(ident, joined("T"), joined("A"), joined("W"))


def read_qrels(path: Path, *, graded: bool = False) -> Qrels:
    """Relevance judgements (see the module docstring)."""
    qrels: Qrels = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise ValueError(f"{path}:{number}: expected `query document [grade]`, got {line!r}")
        grade = int(float(parts[2])) if graded and len(parts) > 2 else 1
        if grade > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = grade
    return qrels


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    if not relevant:
        return 0.0
    return sum(1 for doc in ranked[:k] if doc in relevant) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: Mapping[str, int]) -> float:
    for rank, doc in enumerate(ranked, start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    gains = [relevant.get(doc, 0) for doc in _unique(ranked)[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def _unique(ranked: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


@dataclass(frozen=True, slots=True)
class Scores:
    """Mean metrics of one run over the judged queries."""

    queries: int
    ndcg_10: float
    mrr: float
    recall: dict[int, float]  # k -> recall@k

    def to_json(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"queries": self.queries, "ndcg@10": self.ndcg_10, "mrr": self.mrr}
        out.update({f"recall@{k}": v for k, v in sorted(self.recall.items())})
        return out


def score_run(run: Run, qrels: Qrels, *, recall_ks: Sequence[int] = (10, 100)) -> Scores:
    """Mean nDCG@10, MRR and recall@k of `run` over the queries of `qrels` that have a relevant document
    (a judged query missing from the run scores 0)."""
    judged = [q for q, rel in qrels.items() if rel]
    if not judged:
        raise ValueError("the relevance judgements hold no relevant document")
    ndcg = mrr = 0.0
    recall_ks = sorted(set(recall_ks))  # recall@10 asked twice (depth 10) is one figure, not a doubled one
    recall = dict.fromkeys(recall_ks, 0.0)
    for q in judged:
        ranked = _unique(run.get(q, ()))
        ndcg += ndcg_at(ranked, qrels[q], 10)
        mrr += reciprocal_rank(ranked, qrels[q])
        for k in recall_ks:
            recall[k] += recall_at(ranked, qrels[q], k)
    n = len(judged)
    return Scores(n, ndcg / n, mrr / n, {k: v / n for k, v in recall.items()})


def split_queries(query_ids: Sequence[str], *, seed: int = 15, share: float = 0.5) -> tuple[list[str], list[str]]:
    """A reproducible split into a tuning part and a held-out part (decide it before tuning anything)."""
    shuffled = sorted(query_ids)
    random.Random(seed).shuffle(shuffled)
    cut = round(len(shuffled) * share)
    return sorted(shuffled[:cut]), sorted(shuffled[cut:])
