"""Train the groundedness claim classifier shipped as `src/pilothouse/evals/metrics/groundedness_weights.py`.

    .venv/bin/python -m training.train_groundedness            # fit on dev, freeze, report held-out once, write
    .venv/bin/python -m training.train_groundedness --dry-run  # cross-validated dev figures only, write nothing

Data: `training/groundedness_data.py` (claims built from the CISI abstracts; dev/held-out split by document).
Logistic regression over `grounding_features.FEATURES`; the regularisation is chosen by 5-fold
cross-validation on dev, grouped by document. The decision threshold is fixed at 0.5 (class-balanced training
makes 0.5 the even-odds point, and the monitors' hallucination rate cuts groundedness at 0.5). Held-out
documents are read only after the model is frozen, and their figures are recorded, not used.

Figures are for detecting *unsupported* claims (the positive class), at claim level and at answer level
(answers of three claims of one document: all supported, or one swapped for an unsupported one; the answer's
score is its weakest claim). The baseline is the rule this model replaces: a claim is supported when its
MiniLM cosine with some context sentence is at least 0.5.
"""

from __future__ import annotations

import argparse
import os
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from pilothouse.embeddings import load_minilm
from pilothouse.embeddings.minilm import FloatArray
from pilothouse.evals.metrics.grounding_features import FEATURES, ContextIndex
from training.groundedness_data import ClaimExample, examples
from training.train_toxicity import fit, prf

VERSION = "groundedness-lr-1"
LAMBDAS = (0.01, 0.1, 1.0, 10.0)
FOLDS = 5
DOCS = 150
"""Documents per side at most (MiniLM on two shared cores embeds about 50 sentences a second)."""
OUT = Path(__file__).resolve().parents[1] / "src" / "pilothouse" / "evals" / "metrics" / "groundedness_weights.py"


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): P(a positive scores above a negative)."""
    pos, neg = scores[positive == 1], scores[positive == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


_vectors: dict[str, np.ndarray] = {}


def embed(texts: list[str]) -> FloatArray:
    """Batched MiniLM with a cache (training embeds each context once; the metric embeds text by text, which
    gives the same vectors up to float rounding)."""
    missing = [t for t in dict.fromkeys(texts) if t not in _vectors]
    if missing:
        for text, vector in zip(missing, load_minilm().embed(missing), strict=True):
            _vectors[text] = vector
    return np.asarray([_vectors[t] for t in texts], dtype=np.float32).reshape(len(texts), -1)


def features(rows: list[ClaimExample]) -> np.ndarray:
    """Feature rows, one context index per (document, context)."""
    groups: dict[tuple[int, tuple[str, ...]], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[(row.doc_id, row.context)].append(i)
    x = np.zeros((len(rows), len(FEATURES)))
    for n, ((_, context), ids) in enumerate(groups.items()):
        index = ContextIndex(list(context), embed)
        x[ids] = index.features([rows[i].claim for i in ids])
        if n % 100 == 0:
            print(f"  features: {n}/{len(groups)} contexts", flush=True)
    return x


def probabilities(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-(x @ w + b))))


def figures(rows: list[ClaimExample], x: np.ndarray, p_supported: np.ndarray, seed: int = 11) -> dict[str, object]:
    """Claim- and answer-level figures for detecting unsupported claims, with the cosine baseline."""
    unsupported = np.array([0 if r.supported else 1 for r in rows])
    cosine = x[:, FEATURES.index("cosine_best")]
    out: dict[str, object] = {"claims": len(rows), "unsupported": int(unsupported.sum())}
    for name, risk, flagged in (
        ("model", 1 - p_supported, p_supported < 0.5),
        ("cosine_baseline", 1 - cosine, cosine < 0.5),
    ):
        precision, recall, f1 = prf(unsupported, flagged.astype(int))
        out[name] = {
            "auc": round(auc(risk, unsupported), 4),
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
        }
        by_how = {}
        for how in sorted({r.how for r in rows}):
            mask = np.array([r.how == how for r in rows])
            by_how[how] = round(float(flagged[mask].mean()), 4)
        out[name]["flagged_share_by_kind"] = by_how  # type: ignore[index]
    # Answers: three claims of one document, all supported or one unsupported; scored by the weakest claim.
    rng = random.Random(seed)
    by_doc: dict[int, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_doc[row.doc_id].append(i)
    answer_risk, answer_bad, answer_cos = [], [], []
    for ids in by_doc.values():
        good = [i for i in ids if rows[i].supported]
        bad = [i for i in ids if not rows[i].supported]
        if len(good) < 3 or not bad:
            continue
        for members, label in ((good[:3], 0), ([*good[:2], rng.choice(bad)], 1)):
            answer_risk.append(1 - min(p_supported[m] for m in members))
            answer_cos.append(1 - min(cosine[m] for m in members))
            answer_bad.append(label)
    risk, bad_answers, cos_risk = np.array(answer_risk), np.array(answer_bad), np.array(answer_cos)
    precision, recall, f1 = prf(bad_answers, (risk > 0.5).astype(int))
    cp, cr, _ = prf(bad_answers, (cos_risk > 0.5).astype(int))
    out["answers"] = {
        "n": len(bad_answers),
        "model": {
            "auc": round(auc(risk, bad_answers), 4),
            "precision": round(precision, 4),
            "recall": round(recall, 4),
        },
        "cosine_baseline": {
            "auc": round(auc(cos_risk, bad_answers), 4),
            "precision": round(cp, 4),
            "recall": round(cr, 4),
        },
    }
    return out


def write_module(w: np.ndarray, b: float, card: dict[str, object]) -> None:
    weights = ", ".join(f"{v:.6f}" for v in w)
    OUT.write_text(
        '"""The groundedness claim classifier: weights over `grounding_features.FEATURES` and the figures they were\n'
        'measured at. Generated by `training/train_groundedness.py`; do not edit by hand."""\n\n'
        "from typing import Any\n\n"
        f"VERSION = {VERSION!r}\n"
        f"FEATURES = {tuple(FEATURES)!r}\n"
        f"WEIGHTS = ({weights},)\n"
        f"BIAS = {b:.6f}\n"
        f"CARD: dict[str, Any] = {card!r}\n",
        encoding="utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="cross-validated dev figures only, write nothing")
    parser.add_argument("--limit-docs", type=int, default=DOCS, help="use the first N documents of each side")
    args = parser.parse_args()

    dev = examples("dev", limit_docs=args.limit_docs)
    print(f"dev claims: {len(dev)} ({sum(not r.supported for r in dev)} unsupported)", flush=True)
    x = features(dev)
    y = np.array([1.0 if r.supported else 0.0 for r in dev])
    folds = np.array([r.doc_id % FOLDS for r in dev])
    best: tuple[float, float, np.ndarray] | None = None
    for lam in LAMBDAS:
        oof = np.zeros(len(y))
        for k in range(FOLDS):
            w, b = fit(x[folds != k], y[folds != k], lam)
            oof[folds == k] = probabilities(x[folds == k], w, b)
        score = auc(1 - oof, 1 - y)
        print(f"  lambda={lam}: out-of-fold AUC {score:.4f}")
        if best is None or score > best[0] + 1e-6:
            best = (score, lam, oof)
    assert best is not None
    _, lam, oof = best
    dev_figures = figures(dev, x, oof)
    print(f"chosen lambda={lam}; dev (5-fold, out of fold): {dev_figures}")
    if args.dry_run:
        return
    w, b = fit(x, y, lam)
    print("weights:", dict(zip(FEATURES, np.round(w, 3), strict=True)), "bias", round(b, 3))

    holdout = examples("holdout", limit_docs=args.limit_docs)
    hx = features(holdout)
    holdout_figures = figures(holdout, hx, probabilities(hx, w.astype(np.float64), b))
    print(f"held-out (frozen model): {holdout_figures}")
    card: dict[str, object] = {
        "version": VERSION,
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "data": "claims built from CISI abstracts (training/groundedness_data.py), split by document",
        "lambda": lam,
        "threshold": 0.5,
        "dev_cv": dev_figures,
        "holdout": holdout_figures,
        "limits": "synthetic claims from CISI abstracts; little paraphrased support; English only",
    }
    write_module(w, b, card)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
