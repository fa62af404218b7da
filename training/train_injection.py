"""Train the injection classifier and write `src/pilothouse/guards/injection/injection_model.npz`.

    OPENBLAS_NUM_THREADS=1 python -m training.train_injection            # train and write the artefact
    OPENBLAS_NUM_THREADS=1 python -m training.train_injection --compare  # cross-validated figures only

Only `dev` rows of the fixed split (`training/splits.py`) are read for training and for choosing
thresholds; held-out rows are never loaded here. Data (see `training/injection_data.py`):
- direct head: in-the-wild jailbreaks (attacks) against benign prompts (IFEval, MT-Bench, GSM8K), NotInject
  hard negatives, HaluEval user queries and benign documents (CISI abstracts, e-mails, chat answers, so that
  length alone does not separate the classes); HarmBench requests are left out (not injections);
- indirect head: segments of documents addressed to the AI reading them, against the rest; see
  `training/train_indirect.py` (real carriers with planted BIPIA attacks and dev prompts, and synthetic
  documents from `training/indirect_documents.py`).

Logistic regression with L2, class-balanced, fitted by full-batch Adam in NumPy (no extra dependency).
Thresholds: 5-fold cross-validation on dev (folds by the split's group key, so templates stay together),
the lowest threshold whose out-of-fold false-positive rate on benign rows is at most `TARGET_FP`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pilothouse.guards.injection.cues import CUE_NAMES
from pilothouse.guards.injection.features import feature_strings
from pilothouse.guards.injection.model import ARTEFACT
from pilothouse.guards.injection.normalize import normalize
from training.injection_data import Sample, carriers, direct_samples
from training.splits import group_key

VERSION = "injection-lr-3"
TARGET_FP = 0.01
"""Out-of-fold false-positive rate allowed when choosing thresholds (half the 2% budget, for margin)."""
EMBED_TOKENS = 64
MIN_DF = 3
MAX_VOCAB = 60_000
FOLDS = 5
L2 = 1e-4
STEPS = 400

Array = npt.NDArray[np.float64]


@dataclass
class Sparse:
    """Rows of vocabulary indices, L2-normalised binary values (CSR without SciPy)."""

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    values: Array

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1


def build_vocabulary(feature_sets: list[set[str]]) -> list[str]:
    counts: dict[str, int] = {}
    for features in feature_sets:
        for f in features:
            counts[f] = counts.get(f, 0) + 1
    kept = [f for f, c in counts.items() if c >= MIN_DF]
    kept.sort(key=lambda f: (-counts[f], f))
    return kept[:MAX_VOCAB]


def to_sparse(feature_sets: list[set[str]], index: dict[str, int]) -> Sparse:
    rows = [np.array(sorted(index[f] for f in fs if f in index), dtype=np.int64) for fs in feature_sets]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    return Sparse(indptr, indices, np.repeat(1.0 / np.sqrt(np.maximum(lengths, 1)), lengths))


def fit(
    x: Sparse, dense: Array | None, y: Array, vocab_size: int, *, steps: int = STEPS, l2: float = L2
) -> tuple[Array, Array | None, float]:
    """Class-balanced L2 logistic regression by full-batch Adam: (word weights, dense weights, bias)."""
    n = x.rows
    row_of = np.repeat(np.arange(n), np.diff(x.indptr))
    pos = max(float(y.sum()), 1.0)
    neg = max(float(n - y.sum()), 1.0)
    weight = np.where(y == 1, 0.5 / pos, 0.5 / neg)
    w = np.zeros(vocab_size)
    u = np.zeros(dense.shape[1]) if dense is not None else None
    b = 0.0
    params = [w] + ([u] if u is not None else [])
    m = [np.zeros_like(p) for p in params] + [0.0]
    v = [np.zeros_like(p) for p in params] + [0.0]
    rate, beta1, beta2 = 0.05, 0.9, 0.999
    for step in range(1, steps + 1):
        z = np.bincount(row_of, weights=x.values * w[x.indices], minlength=n) + b
        if dense is not None and u is not None:
            z += dense @ u
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        g = (p - y) * weight
        grads: list[Array | float] = [
            np.bincount(x.indices, weights=x.values * g[row_of], minlength=vocab_size) + l2 * w
        ]
        if dense is not None and u is not None:
            grads.append(dense.T @ g + l2 * u)
        grads.append(float(g.sum()))
        for i, grad in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * grad
            v[i] = beta2 * v[i] + (1 - beta2) * np.square(grad)
            update = rate * (m[i] / (1 - beta1**step)) / (np.sqrt(v[i] / (1 - beta2**step)) + 1e-8)
            if i < len(params):
                params[i] -= update
            else:
                b -= float(update)
    return w, u, b


def predict(x: Sparse, dense: Array | None, w: Array, u: Array | None, b: float) -> Array:
    row_of = np.repeat(np.arange(x.rows), np.diff(x.indptr))
    z = np.bincount(row_of, weights=x.values * w[x.indices], minlength=x.rows) + b
    if dense is not None and u is not None:
        z += dense @ u
    out: Array = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
    return out


def fold_of(text: str) -> int:
    return int.from_bytes(hashlib.sha256(group_key(text).encode()).digest()[:4], "big") % FOLDS


def threshold_for(benign_scores: Array, target: float = TARGET_FP) -> float:
    """The lowest threshold flagging at most `target` of the benign scores."""
    ordered = np.sort(benign_scores)[::-1]
    allowed = int(np.floor(target * len(ordered)))
    return float(min(max(ordered[allowed] + 1e-6, 0.05), 0.99)) if len(ordered) > allowed else 0.5


def embeddings(texts: list[str], cache: Path) -> Array:
    """MiniLM embeddings of each normalised text's first EMBED_TOKENS tokens (cached between runs)."""
    key = hashlib.sha256(("\x00".join(texts) + str(EMBED_TOKENS)).encode()).hexdigest()[:16]
    path = cache / f"injection_emb_{key}.npy"
    if path.is_file():
        loaded: Array = np.load(path)
        return loaded
    from pilothouse.guards.injection.classifier import embed_head

    started = time.perf_counter()
    out = np.stack([embed_head(normalize(t).text, EMBED_TOKENS) for t in texts]).astype(np.float64)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def direct_rows() -> list[Sample]:
    rows = [s for s in direct_samples() if s.side == "dev" and s.label in (0, 1)]
    rows += [s for s in carriers() if s.side == "dev"]
    return rows


def cross_validate(feats: list[set[str]], dense: Array | None, y: Array, folds: npt.NDArray[np.int64]) -> Array:
    """Out-of-fold probabilities (vocabulary rebuilt per fold from its training rows only)."""
    oof = np.zeros(len(y))
    for k in range(FOLDS):
        train = np.flatnonzero(folds != k)
        test = np.flatnonzero(folds == k)
        vocab = build_vocabulary([feats[i] for i in train])
        index = {f: i for i, f in enumerate(vocab)}
        x_train = to_sparse([feats[i] for i in train], index)
        x_test = to_sparse([feats[i] for i in test], index)
        d_train = dense[train] if dense is not None else None
        d_test = dense[test] if dense is not None else None
        w, u, b = fit(x_train, d_train, y[train], len(vocab))
        oof[test] = predict(x_test, d_test, w, u, b)
    return oof


def report(name: str, rows: list[Sample], oof: Array, threshold: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for source in sorted({r.source for r in rows}):
        picked = np.array([r.source == source for r in rows])
        rate = float((oof[picked] >= threshold).mean())
        out[source] = round(rate, 4)
        print(f"  {name} {source:24s} flagged {rate:.3f} of {int(picked.sum())}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--compare", action="store_true", help="cross-validate with and without embeddings; write nothing"
    )
    parser.add_argument(
        "--embedding",
        action="store_true",
        help="add the MiniLM head embedding to the direct head (off: it did not help on dev)",
    )
    parser.add_argument("--cache", type=Path, default=Path(".cache"), help="where embeddings are cached")
    parser.add_argument("--out", type=Path, default=ARTEFACT)
    args = parser.parse_args()

    rows = direct_rows()
    feats = [feature_strings(normalize(r.text).text) for r in rows]
    y = np.array([r.label for r in rows], dtype=np.float64)
    folds = np.array([fold_of(r.text) for r in rows], dtype=np.int64)
    variants = [False, True] if args.compare else [args.embedding]
    results: dict[bool, tuple[Array, float]] = {}
    for use_embedding in variants:
        dense = embeddings([r.text for r in rows], args.cache) if use_embedding else None
        oof = cross_validate(feats, dense, y, folds)
        benign = oof[y == 0]
        threshold = threshold_for(benign)
        detection = float((oof[y == 1] >= threshold).mean())
        print(
            f"direct head, embedding={use_embedding}: threshold {threshold:.3f}, OOF detection {detection:.3f}",
            file=sys.stderr,
        )
        report("direct", rows, oof, threshold)
        results[use_embedding] = (oof, threshold)
    if args.compare:
        return

    use_embedding = bool(args.embedding)
    oof, direct_threshold = results[use_embedding]
    dense = embeddings([r.text for r in rows], args.cache) if use_embedding else None
    vocab = build_vocabulary(feats)
    index = {f: i for i, f in enumerate(vocab)}
    w, u, b = fit(to_sparse(feats, index), dense, y, len(vocab))

    from training.train_indirect import train as train_indirect

    indirect = train_indirect(index, len(vocab))
    meta = {
        "version": VERSION,
        "direct_threshold": direct_threshold,
        "indirect_threshold": indirect.threshold,
        "indirect_doc": [round(float(v), 6) for v in indirect.doc],
        "cue_names": list(CUE_NAMES),
        "embed_tokens": EMBED_TOKENS if use_embedding else 0,
        "vocabulary": len(vocab),
        "features": "words, word pairs, character 4-grams of normalised text; MiniLM head embedding"
        if use_embedding
        else "words, word pairs, character 4-grams of normalised text",
        "training_data": "dev split of ../shared/data/injection (inthewild, benign_prompts, notinject, bipia), "
        "eval/halueval_general_dev.jsonl, rag/cisi, rag/bipia_email_qa.jsonl; indirect head also the train side "
        "of training/indirect_documents.py",
        "target_fp": TARGET_FP,
        "dev_cv": {
            "direct_detection": round(float((oof[y == 1] >= direct_threshold).mean()), 4),
            "direct_fp": round(float((oof[y == 0] >= direct_threshold).mean()), 4),
        },
        "indirect_dev": indirect.report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        meta=np.array(json.dumps(meta, sort_keys=True)),
        vocab=np.array("\n".join(vocab)),
        direct_w=w.astype(np.float32),
        direct_b=np.array(b, dtype=np.float32),
        direct_emb=(u if u is not None else np.zeros(0)).astype(np.float32),
        indirect_w=indirect.weights.astype(np.float32),
        indirect_b=np.array(indirect.bias, dtype=np.float32),
        indirect_cues=indirect.cue_weights.astype(np.float32),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): {json.dumps(meta)}", file=sys.stderr)


if __name__ == "__main__":
    main()
