"""Train the indirect head: "is this segment of a document addressed to the AI reading it?".

Called by `training.train_injection` (which writes the artefact); on its own it prints cross-validated
figures and writes nothing:

    OPENBLAS_NUM_THREADS=1 python -m training.train_indirect

Data (dev side of `training/splits.py` only; held-out rows are never loaded):
- real carriers (CISI abstracts, BIPIA e-mails, HaluEval chat answers) as benign documents;
- BIPIA attack instructions planted in them (start, middle, end), and every dev prompt (benign or not: in a
  document, any request to an AI is out of place) planted once in a random carrier;
- synthetic documents from the `train` side of `training/indirect_documents.py` (carriers, benign imperative
  documents for people, seven attack classes). Its `test` side is never trained on: it is the
  generator-level check on templates the model never saw.

Model: a logistic regression per segment over the lexical features of `features.py` (the direct head's
vocabulary) and the dense cues of `cues.py`; a document's logit is `a * max_segment_logit + b *
log(1 + segments) + c` (fitted on out-of-fold maxima, so longer documents, with more chances of one odd
sentence, need a stronger one). The threshold is the lowest whose out-of-fold false-positive rate on benign
dev documents is at most `TARGET_FP`.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pilothouse.guards.injection.cues import CUE_NAMES, segment_cues
from pilothouse.guards.injection.features import feature_strings
from pilothouse.guards.injection.normalize import normalize
from training.indirect_documents import documents
from training.injection_data import carriers, direct_samples, indirect_attacks, planted

Array = npt.NDArray[np.float64]

TARGET_FP = 0.01
"""Out-of-fold document false-positive rate allowed when choosing the threshold (half the 2% budget)."""
PLANTED_PROMPTS = ("inthewild", "benign_ifeval")
"""Dev prompts planted as instructions: jailbreaks, and IFEval's requests about "your response". Maths word
problems, open questions and NotInject's benign sentences were tried and left out: on their own, in a
document, they read as content, and as positives they taught the head that any question is an attack."""
GENERATED_TRAIN = 5000
GENERATED_TEST = 2000
FOLDS = 5
L2 = 3e-4
STEPS = 250


@dataclass(frozen=True, slots=True)
class Doc:
    text: str
    label: int
    source: str
    span: tuple[int, int] | None
    group: str


def _find(text: str, attack: str) -> tuple[int, int] | None:
    at = text.find(attack)
    return (at, at + len(attack)) if at >= 0 else None


def real_docs(seed: int = 7) -> list[Doc]:
    """Dev carriers alone, BIPIA dev attacks planted three times each, dev prompts planted once each."""
    rng = random.Random(seed)
    docs = [Doc(c.text, 0, c.source, None, c.text) for c in carriers() if c.side == "dev"]
    out = list(docs)
    for attack in (a for a in indirect_attacks() if a.side == "dev"):
        for i, doc in enumerate(rng.sample(docs, 3)):
            text = planted(doc.text, attack.text, ("start", "middle", "end")[i % 3])
            out.append(Doc(text, 1, attack.source, _find(text, attack.text), attack.text))
    for prompt in (p for p in direct_samples() if p.side == "dev" and p.source in PLANTED_PROMPTS):
        doc = rng.choice(docs)
        instruction = prompt.text[:600]
        text = planted(doc.text, instruction, rng.choice(("start", "middle", "end")))
        out.append(Doc(text, 1, f"prompt_{prompt.source}", _find(text, instruction), prompt.text))
    return out


def generated_docs(side: str, n: int) -> list[Doc]:
    return [
        Doc(d.text, d.label, f"gen_{d.kind}:{d.carrier}", d.span, f"gen-{side}-{i}")
        for i, d in enumerate(documents("train" if side == "train" else "test", n))
    ]


@dataclass
class Table:
    """Every segment of every document: lexical feature ids, cues, label (1, 0, or -1: partly planted)."""

    doc_of: npt.NDArray[np.int64]
    feats: list[set[str]]
    cues: Array
    labels: Array


def segment_table(docs: list[Doc]) -> Table:
    doc_of: list[int] = []
    feats: list[set[str]] = []
    cue_rows: list[Array] = []
    labels: list[float] = []
    for d, doc in enumerate(docs):
        norm = normalize(doc.text)
        spans, cues = segment_cues(norm.text)
        for (start, end), row in zip(spans, cues, strict=True):
            o_start, o_end = norm.span(start, end)
            label = 0.0
            if doc.span is not None:
                overlap = max(0, min(o_end, doc.span[1]) - max(o_start, doc.span[0]))
                label = 1.0 if overlap >= 0.5 * (o_end - o_start) else (-1.0 if overlap else 0.0)
            doc_of.append(d)
            feats.append(feature_strings(norm.text[start:end]))
            cue_rows.append(row)
            labels.append(label)
    return Table(np.array(doc_of, dtype=np.int64), feats, np.array(cue_rows), np.array(labels))


def segment_logits(table: Table, index: dict[str, int], w: Array, u: Array, b: float) -> Array:
    from training.train_injection import to_sparse

    x = to_sparse(table.feats, index)
    row_of = np.repeat(np.arange(x.rows), np.diff(x.indptr))
    z: Array = np.bincount(row_of, weights=x.values * w[x.indices], minlength=x.rows) + table.cues @ u + b
    return z


def doc_features(table: Table, z: Array, n_docs: int) -> Array:
    """Per document: max segment logit, log(1 + segments)."""
    best = np.full(n_docs, -40.0)
    np.maximum.at(best, table.doc_of, z)
    count = np.bincount(table.doc_of, minlength=n_docs).astype(np.float64)
    return np.stack([best, np.log1p(count)], axis=1)


def fit_sentences(
    table: Table, index: dict[str, int], vocab_size: int, rows: npt.NDArray[np.intp]
) -> tuple[Array, Array, float]:
    from training.train_injection import fit, to_sparse

    keep = rows[table.labels[rows] >= 0]
    x = to_sparse([table.feats[i] for i in keep], index)
    w, u, b = fit(x, table.cues[keep], table.labels[keep], vocab_size, steps=STEPS, l2=L2)
    assert u is not None
    return w, u, b


def fit_documents(features: Array, y: Array) -> Array:
    """Class-balanced logistic regression of the document label on its features (Newton steps): [a, b, c]."""
    x = np.hstack([features, np.ones((len(y), 1))])
    weight = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max(len(y) - y.sum(), 1))
    theta = np.array([1.0, 0.0, 0.0])
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(x @ theta, -40, 40)))
        grad = x.T @ ((p - y) * weight) + 1e-4 * theta
        hess = (x * (weight * p * (1 - p))[:, None]).T @ x + 1e-4 * np.eye(3)
        theta -= np.linalg.solve(hess, grad)
    return theta


def doc_probability(features: Array, theta: Array) -> Array:
    out: Array = 1 / (1 + np.exp(-np.clip(features @ theta[:2] + theta[2], -40, 40)))
    return out


def balanced_threshold(scores: Array, sources: list[str], target: float = TARGET_FP) -> float:
    """The lowest threshold at which the mean of the per-source false-positive rates is at most `target`
    (so a large, easy benign source cannot hide a small, hard one)."""
    groups = {s: scores[[i for i, x in enumerate(sources) if x == s]] for s in set(sources)}
    for t in np.unique(np.concatenate([scores, [0.5]])):
        if np.mean([float((g > t).mean()) for g in groups.values()]) <= target:
            return float(min(max(t + 1e-6, 0.05), 0.99))
    return 0.99


def _fold(group: str) -> int:
    from training.train_injection import fold_of

    return fold_of(group)


@dataclass
class IndirectHead:
    weights: Array
    cue_weights: Array
    bias: float
    doc: Array
    threshold: float
    report: dict[str, float]


def train(index: dict[str, int], vocab_size: int) -> IndirectHead:
    """Cross-validate on the training pool, report, then fit on all of it; figures go to stderr."""
    pool = real_docs() + generated_docs("train", GENERATED_TRAIN)
    table = segment_table(pool)
    y_doc = np.array([d.label for d in pool], dtype=np.float64)
    folds = np.array([_fold(d.group) for d in pool], dtype=np.int64)
    oof = np.zeros(len(table.labels))
    for k in range(FOLDS):
        train_rows = np.flatnonzero(folds[table.doc_of] != k)
        test_rows = np.flatnonzero(folds[table.doc_of] == k)
        w, u, b = fit_sentences(table, index, vocab_size, train_rows)
        sub = Table(
            table.doc_of[test_rows], [table.feats[i] for i in test_rows], table.cues[test_rows], table.labels[test_rows]
        )
        oof[test_rows] = segment_logits(sub, index, w, u, b)
        print(f"  fold {k} done", file=sys.stderr)
    features = doc_features(table, oof, len(pool))
    theta = fit_documents(features, y_doc)
    p_oof = doc_probability(features, theta)
    benign = np.flatnonzero(y_doc == 0)
    threshold = balanced_threshold(
        p_oof[benign], [pool[i].source if pool[i].source.startswith("doc_") else "generated" for i in benign]
    )
    report = _report("OOF dev", pool, p_oof, threshold)

    w, u, b = fit_sentences(table, index, vocab_size, np.arange(len(table.labels)))
    test = generated_docs("test", GENERATED_TEST)
    test_table = segment_table(test)
    p_test = doc_probability(doc_features(test_table, segment_logits(test_table, index, w, u, b), len(test)), theta)
    report.update(_report("generator test side (unseen templates)", test, p_test, threshold))
    top = np.argsort(-np.abs(u))[:12]
    print("  strongest cues: " + ", ".join(f"{CUE_NAMES[i]} {u[i]:+.2f}" for i in top), file=sys.stderr)
    return IndirectHead(w, u, b, theta, threshold, report)


def _report(name: str, docs: list[Doc], p: Array, threshold: float) -> dict[str, float]:
    flagged = p >= threshold
    y = np.array([d.label for d in docs])
    out: dict[str, float] = {}
    print(f"{name}: threshold {threshold:.3f}", file=sys.stderr)
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        family = (
            d.source.split(":")[0] if d.label else "benign:" + (d.source.split(":")[1] if ":" in d.source else d.source)
        )
        groups.setdefault(family, []).append(i)
    for family, rows in sorted(groups.items()):
        rate = float(flagged[rows].mean())
        print(f"  {family:32s} flagged {rate:6.1%} of {len(rows)}", file=sys.stderr)
    for label, what in ((1, "detection"), (0, "fp")):
        rate = float(flagged[y == label].mean())
        out[f"{name}: {what}"] = round(rate, 4)
        print(f"  ALL {what}: {rate:.2%}", file=sys.stderr)
    return out


def main() -> None:
    from training.train_injection import build_vocabulary, direct_rows

    rows = direct_rows()
    vocab = build_vocabulary([feature_strings(normalize(r.text).text) for r in rows])
    index = {f: i for i, f in enumerate(vocab)}
    train(index, len(vocab))


if __name__ == "__main__":
    main()
