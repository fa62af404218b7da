"""Train the learned indirect detector and write `src/pilothouse/guards/injection/indirect_model.npz`.

    OPENBLAS_NUM_THREADS=1 python -m training.train_indirect_model             # train, report, write
    OPENBLAS_NUM_THREADS=1 python -m training.train_indirect_model --dry-run   # report only

What it learns (`pilothouse.guards.injection.indirect_model`): a segment model ("is this sentence written to
the AI that reads the document?") and a stacker that turns the rules' findings, the segment model's two
highest logits and the document's frame into one probability.

Data, dev parts only (held-out rows are never loaded here):
- the dev part (70%, stratified by class) of the two used hand-written sets (`training/indirect_sets.py`):
  the target distribution. Their attack documents say which document holds an instruction, not which
  sentence, so the segment model learns them as multiple-instance bags: first without them, then with each
  attack document's highest-scoring segment as a positive (its other segments are left out);
- dev carriers of `training/injection_data.py` (CISI abstracts, BIPIA e-mails, HaluEval chat answers) alone,
  and with dev BIPIA attacks and in-the-wild jailbreaks planted in them (the planted span is known);
- generated documents from the `train` side of `training/indirect_documents.py` (their `test` side is the
  generator-level check and is never trained on).

Every figure is out-of-fold (5 folds by document group; the segment model and the stacker are refitted per
fold). The threshold is the lowest at which the out-of-fold false-positive rate is at most `TARGET_FP` on the
sets' dev benign documents and on the carriers; it is fixed before the held-out part is run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pilothouse.guards.injection.address import foreign_request
from pilothouse.guards.injection.features import feature_strings
from pilothouse.guards.injection.indirect_model import (
    ARTEFACT,
    FEATURE_NAMES,
    document_vector,
    fold,
    frame_count,
    segment_spans,
)
from pilothouse.guards.injection.layered import InjectionScanner
from pilothouse.guards.injection.normalize import normalize
from pilothouse.guards.scanner import Finding, ScanContext
from training.indirect_documents import documents
from training.indirect_sets import SALT, set_docs
from training.injection_data import carriers, direct_samples, indirect_attacks, planted
from training.train_injection import build_vocabulary, fit, to_sparse

VERSION = "indirect-stack-1"
TARGET_FP = 0.015
"""Out-of-fold false-positive rate allowed on the sets' dev benign documents and on the carriers (under the
2% target, for margin)."""
PLANTED_BIPIA = ("bipia_code",)
"""BIPIA attacks planted as positives: the code attacks only. Its text attacks are bare content requests
("What is the capital of Brazil?", "Answer the question in Spanish") addressed to no one; as positives they
taught the segment model that questions and "answer ..." in exam papers and FAQs are attacks."""
FOLDS = 5
GENERATED = 1500
CARRIERS = 700
SET_REPEAT = 8
"""The sets' segments count this many times in the segment model's loss (they are few but the most real)."""
STEPS = 200
L2 = 3e-4
STACK_L2 = 1e-3
HIDDEN = 8
MEMBERS = 5
STACK_STEPS = 1500
INDIRECT = ScanContext(role="document", mode="indirect")

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Doc:
    text: str
    label: int
    source: str
    group: str
    span: tuple[int, int] | None
    mil: bool = False
    """An attack document whose instruction's span is unknown (a multiple-instance bag)."""


def _find(text: str, needle: str) -> tuple[int, int] | None:
    at = text.find(needle)
    return (at, at + len(needle)) if at >= 0 else None


def pool(seed: int = 7) -> list[Doc]:
    rng = random.Random(seed)
    out = [
        Doc(d.text, d.label, f"set:{d.origin}:{d.cls}", f"{d.origin}:{d.id}", None, mil=d.label == 1)
        for d in set_docs()
        if d.part == "dev"
    ]
    dev_carriers = [c for c in carriers() if c.side == "dev"]
    picked = rng.sample(dev_carriers, min(CARRIERS, len(dev_carriers)))
    out += [Doc(c.text, 0, f"carrier:{c.source}", c.text[:80], None) for c in picked]
    attacks = [a for a in indirect_attacks() if a.side == "dev" and a.label == 1 and a.source in PLANTED_BIPIA]
    attacks += [p for p in direct_samples() if p.side == "dev" and p.source == "inthewild"]
    for attack in attacks:
        carrier = rng.choice(dev_carriers).text
        instruction = attack.text[:600]
        text = planted(carrier, instruction, rng.choice(("start", "middle", "end")))
        out.append(Doc(text, 1, f"planted:{attack.source}", instruction[:80], _find(text, instruction)))
    for i, d in enumerate(documents("train", GENERATED, seed=31)):
        out.append(Doc(d.text, d.label, f"generated:{d.kind}", f"gen-{i}", d.span))
    return out


@dataclass
class Segments:
    doc_of: npt.NDArray[np.int64]
    feats: list[set[str]]
    labels: Array
    """1, 0, or -1 (left out: partly planted, or a segment of a bag)."""


def segment_table(docs: list[Doc], found: list[tuple[Finding, ...]]) -> Segments:
    """Every segment with its label; in a bag, the segments a rule finding covers (score >= 0.5) are taken
    as positives from the start (the rules point at the instruction), the others are left out."""
    doc_of: list[int] = []
    feats: list[set[str]] = []
    labels: list[float] = []
    for d, doc in enumerate(docs):
        norm = normalize(doc.text)
        hits = [(f.start, f.end) for f in found[d] if f.score >= 0.5 and f.end - f.start >= 8]
        for start, end in segment_spans(norm.text):
            label = 0.0
            if doc.mil:
                o_start, o_end = norm.span(start, end)
                label = 1.0 if any(min(o_end, e) - max(o_start, s) > 0 for s, e in hits) else -1.0
            elif doc.span is not None:
                o_start, o_end = norm.span(start, end)
                overlap = max(0, min(o_end, doc.span[1]) - max(o_start, doc.span[0]))
                label = 1.0 if overlap >= 0.5 * (o_end - o_start) else (-1.0 if overlap else 0.0)
            doc_of.append(d)
            feats.append(feature_strings(norm.text[start:end]))
            labels.append(label)
    return Segments(np.array(doc_of, dtype=np.int64), feats, np.array(labels))


def evidence(docs: list[Doc]) -> tuple[list[tuple[Finding, ...]], list[tuple[float, float]]]:
    """The rules' findings (exactly as the scanner computes them), and the foreign-language cue and the frame
    of every document."""
    scanner = InjectionScanner(classifier=False, indirect_model=False)
    found: list[tuple[Finding, ...]] = []
    cues: list[tuple[float, float]] = []
    for doc in docs:
        norm = normalize(doc.text)
        found.append(scanner.indirect_evidence(doc.text, scanner.heuristics.findings(doc.text, INDIRECT, norm)))
        cues.append((foreign_request(fold(doc.text)), frame_count(norm.text)))
    return found, cues


def _logits(table: Segments, rows: npt.NDArray[np.intp], index: dict[str, int], w: Array, b: float) -> Array:
    x = to_sparse([table.feats[i] for i in rows], index)
    row_of = np.repeat(np.arange(x.rows), np.diff(x.indptr))
    out: Array = np.bincount(row_of, weights=x.values * w[x.indices], minlength=x.rows).astype(np.float64) + b
    return out


def fit_segments(
    table: Segments, docs: list[Doc], train_docs: npt.NDArray[np.intp], index: dict[str, int]
) -> tuple[Array, float]:
    """The segment model on the segments of `train_docs`: once without the bags, then with each bag's
    highest-scoring segment as a positive."""
    in_train = np.zeros(len(docs), dtype=bool)
    in_train[train_docs] = True
    rows = np.flatnonzero(in_train[table.doc_of])
    labels = table.labels.copy()

    def fit_rows() -> tuple[Array, float]:
        weight_rows = _repeat_sets(rows, table, docs, labels)
        w, _, b = fit(
            to_sparse([table.feats[i] for i in weight_rows], index),
            None,
            labels[weight_rows],
            len(index),
            steps=STEPS,
            l2=L2,
        )
        return w, b

    w, b = fit_rows()
    seeded = {int(table.doc_of[i]) for i in rows if docs[table.doc_of[i]].mil and labels[i] == 1}
    bag_rows = np.array(
        [i for i in rows if docs[table.doc_of[i]].mil and int(table.doc_of[i]) not in seeded], dtype=np.intp
    )
    if len(bag_rows):
        z = _logits(table, bag_rows, index, w, b)
        best: dict[int, tuple[float, int]] = {}
        for row, value in zip(bag_rows, z, strict=True):
            d = int(table.doc_of[row])
            if d not in best or value > best[d][0]:
                best[d] = (float(value), int(row))
        for _, row in best.values():
            labels[row] = 1.0
        w, b = fit_rows()
    return w, b


def _repeat_sets(rows: npt.NDArray[np.intp], table: Segments, docs: list[Doc], labels: Array) -> npt.NDArray[np.intp]:
    keep = rows[labels[rows] >= 0]
    is_set = np.array([docs[table.doc_of[i]].source.startswith("set:") for i in keep], dtype=bool)
    return np.concatenate([keep] + [keep[is_set]] * (SET_REPEAT - 1))


@dataclass(frozen=True, slots=True)
class Stacker:
    """Standardisation, one hidden tanh layer and a logistic output (`IndirectModel.probability`)."""

    mean: Array
    scale: Array
    w1: Array
    b1: Array
    w2: Array
    b2: float

    def probability(self, x: Array) -> Array:
        hidden = np.tanh(((x - self.mean) / self.scale) @ self.w1 + self.b1)
        out: Array = 1 / (1 + np.exp(-np.clip(hidden @ self.w2 + self.b2, -40, 40)))
        return out


def fit_stacker(x: Array, y: Array, weight: Array, *, seed: int = 0) -> Stacker:
    """Weighted, class-balanced, L2-regularised; full-batch Adam."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, 0.3, (z.shape[1], HIDDEN)), np.zeros(HIDDEN), rng.normal(0, 0.3, HIDDEN), np.zeros(1)]
    pos, neg = weight[y == 1].sum(), weight[y == 0].sum()
    sw = np.where(y == 1, 0.5 * weight / pos, 0.5 * weight / neg)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for step in range(1, STACK_STEPS + 1):
        hidden = np.tanh(z @ params[0] + params[1])
        p = 1 / (1 + np.exp(-np.clip(hidden @ params[2] + params[3][0], -40, 40)))
        g = (p - y) * sw
        g_hidden = np.outer(g, params[2]) * (1 - hidden**2)
        grads = [
            z.T @ g_hidden + STACK_L2 * params[0],
            g_hidden.sum(axis=0),
            hidden.T @ g + STACK_L2 * params[2],
            np.array([g.sum()]),
        ]
        for i, grad in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad**2
            params[i] -= 0.02 * (m[i] / (1 - 0.9**step)) / (np.sqrt(v[i] / (1 - 0.999**step)) + 1e-8)
    return Stacker(mean, scale, params[0], params[1], params[2], float(params[3][0]))


@dataclass(frozen=True, slots=True)
class Ensemble:
    """Stackers fitted from different random starts; the probability is their mean."""

    members: list[Stacker]

    def probability(self, x: Array) -> Array:
        out: Array = np.mean([m.probability(x) for m in self.members], axis=0)
        return out


def fit_ensemble(x: Array, y: Array, weight: Array) -> Ensemble:
    return Ensemble([fit_stacker(x, y, weight, seed=seed) for seed in range(MEMBERS)])


def stack_weights(docs: list[Doc]) -> Array:
    """Per document weight in the stacker: the sets 70%, carriers 10%, planted attacks 5%, generated 15%."""
    share = {"set": 0.7, "carrier": 0.1, "planted": 0.05, "generated": 0.15}
    kinds = [d.source.split(":")[0] for d in docs]
    count = {k: kinds.count(k) for k in share}
    return np.array([share[k] / count[k] for k in kinds])


def choose_threshold(p: Array, docs: list[Doc]) -> float:
    """The lowest threshold whose false-positive rate is at most TARGET_FP on the sets' benign documents and
    on the carriers."""
    groups = [
        np.array([i for i, d in enumerate(docs) if d.label == 0 and d.source.startswith(prefix)])
        for prefix in ("set:", "carrier:")
    ]
    for t in np.unique(np.concatenate([p, [0.5]])):
        if all(float((p[g] >= t + 1e-9).mean()) <= TARGET_FP for g in groups):
            return float(min(max(t + 1e-6, 0.02), 0.99))
    return 0.99


def _final_scores(
    table: Segments,
    docs: list[Doc],
    found: list[tuple[Finding, ...]],
    frames: list[tuple[float, float]],
    index: dict[str, int],
    seg_w: npt.NDArray[np.float32],
    seg_b: float,
    stacker: Ensemble,
) -> Array:
    """Every document's probability under the final model, as the scanner computes it (float32 weights)."""
    logits: list[list[float]] = [[] for _ in docs]
    rows = np.arange(len(table.labels))
    for row, value in zip(
        rows, _logits(table, rows, index, seg_w.astype(np.float64), float(np.float32(seg_b))), strict=True
    ):
        logits[int(table.doc_of[row])].append(float(value))
    x = np.stack([document_vector(f, z, *c) for f, z, c in zip(found, logits, frames, strict=True)])
    return stacker.probability(x)


def report(name: str, docs: list[Doc], p: Array, threshold: float) -> dict[str, float]:
    flagged = p >= threshold
    out: dict[str, float] = {}
    print(f"\n{name} (threshold {threshold:.3f})", file=sys.stderr)
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        outcome = ":attack" if d.label else ":benign"
        family = d.source if d.source.startswith("set:") else d.source.split(":")[0] + outcome
        groups.setdefault(family, []).append(i)
    for family, rows in sorted(groups.items()):
        print(f"  {family:44s} flagged {float(flagged[rows].mean()):6.1%} of {len(rows)}", file=sys.stderr)
    for prefix in ("set:", "carrier:", "planted:", "generated:"):
        for label, what in ((1, "detection"), (0, "fp")):
            rows = [i for i, d in enumerate(docs) if d.source.startswith(prefix) and d.label == label]
            if rows:
                out[f"{prefix[:-1]} {what}"] = round(float(flagged[rows].mean()), 4)
    print("  " + ", ".join(f"{k} {v:.1%}" for k, v in out.items()), file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    parser.add_argument("--out", type=Path, default=ARTEFACT, help="where to write the artefact")
    parser.add_argument("--dump", help="also save the out-of-fold stacker inputs to this .npz (for analysis)")
    args = parser.parse_args()
    started = time.process_time()
    docs = pool()
    print(f"{len(docs)} documents", file=sys.stderr)
    found, frames = evidence(docs)
    table = segment_table(docs, found)
    vocab = build_vocabulary(table.feats)
    index = {f: i for i, f in enumerate(vocab)}
    print(
        f"{len(table.labels)} segments, vocabulary {len(vocab)}, {time.process_time() - started:.0f}s CPU",
        file=sys.stderr,
    )
    y = np.array([d.label for d in docs], dtype=np.float64)
    folds = np.array([int.from_bytes(hashlib.sha256(d.group.encode()).digest()[:4], "big") % FOLDS for d in docs])
    oof_logits: list[list[float]] = [[] for _ in docs]
    for k in range(FOLDS):
        w, b = fit_segments(table, docs, np.flatnonzero(folds != k), index)
        rows = np.flatnonzero(folds[table.doc_of] == k)
        for row, value in zip(rows, _logits(table, rows, index, w, b), strict=True):
            oof_logits[int(table.doc_of[row])].append(float(value))
        print(f"  fold {k}: {time.process_time() - started:.0f}s CPU", file=sys.stderr)
    x = np.stack([document_vector(f, z, *c) for f, z, c in zip(found, oof_logits, frames, strict=True)])
    weight = stack_weights(docs)
    if args.dump is not None:
        np.savez(args.dump, x=x, y=y, folds=folds, sources=np.array([d.source for d in docs]))
    oof = np.zeros(len(docs))
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        oof[test] = fit_ensemble(x[train], y[train], weight[train]).probability(x[test])
    threshold = choose_threshold(oof, docs)
    dev = report("out-of-fold, dev", docs, oof, threshold)
    rules_only = np.array([max((f.score for f in fs), default=0.0) for fs in found])
    report("rules alone (max finding score), dev", docs, rules_only, 0.5)

    stacker = fit_ensemble(x, y, weight)
    seg_w, seg_b = fit_segments(table, docs, np.arange(len(docs)), index)
    fitted = _final_scores(table, docs, found, frames, index, seg_w.astype(np.float32), seg_b, stacker)
    fit_report = report(
        "final model, in-sample (what tests/guards/injection/test_indirect_model.py checks)", docs, fitted, threshold
    )
    meta = {
        "version": VERSION,
        "threshold": threshold,
        "feature_names": list(FEATURE_NAMES),
        "target_fp": TARGET_FP,
        "split_salt": SALT,
        "training_data": "dev parts (70%) of bench/data/indirect_holdout.jsonl and indirect_holdout2.jsonl "
        "(training/indirect_sets.py); dev carriers and planted dev BIPIA attacks and in-the-wild jailbreaks of "
        "../shared/data (training/injection_data.py); the train side of training/indirect_documents.py",
        "dev_oof": dev,
        "dev_fit": fit_report,
        "vocabulary": len(vocab),
        "cpu_seconds": round(time.process_time() - started),
    }
    print(json.dumps(meta), file=sys.stderr)
    if args.dry_run:
        return
    np.savez_compressed(
        args.out,
        meta=np.array(json.dumps(meta, sort_keys=True)),
        vocab=np.array("\n".join(vocab)),
        segment_w=seg_w.astype(np.float32),
        segment_b=np.array(seg_b, dtype=np.float32),
        stack_mean=stacker.members[0].mean,
        stack_scale=stacker.members[0].scale,
        stack_w1=np.stack([m.w1 for m in stacker.members]),
        stack_b1=np.stack([m.b1 for m in stacker.members]),
        stack_w2=np.stack([m.w2 for m in stacker.members]),
        stack_b2=np.array([m.b2 for m in stacker.members]),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
