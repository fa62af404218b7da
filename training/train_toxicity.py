"""Train the toxicity classifier shipped in `src/pilothouse/guards/toxicity/` (model.npz + model.json).

    .venv/bin/python -m training.train_toxicity            # train on the dev side, write the artefact
    .venv/bin/python -m training.train_toxicity --dry-run  # cross-validated figures only

Data (`training/toxicity_data.py`): ToxiGen's hateful and neutral statements about women (dev side of
`training.splits` only) and our self-written statements about other groups (all dev). The regularisation
strength and the decision threshold are chosen by 5-fold cross-validation on dev; held-out rows are never read
here (`bench/guard_content_bench.py --split holdout` reports them once, for the frozen model).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections import Counter
from datetime import UTC, datetime

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from pilothouse.guards.embedder import embed
from pilothouse.guards.toxicity.model import FEATURE_COUNT, ToxicityModel, feature_matrix
from training.toxicity_data import Example, examples

VERSION = "toxicity-lr-1"
LAMBDAS = (0.01, 0.03, 0.1, 0.3, 1.0)
FOLDS = 5


def fit(x: np.ndarray, y: np.ndarray, lam: float, iterations: int = 25) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (the bias is not penalised); classes weighted
    to balance."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    positive = max(1.0, float(y.sum()))
    negative = max(1.0, float(n - y.sum()))
    sample = np.where(y == 1, n / (2 * positive), n / (2 * negative))
    penalty = np.full(d + 1, lam)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        gradient = xb.T @ (sample * (p - y)) + penalty * w
        hessian = (xb * (sample * p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w[:-1].astype(np.float32), float(w[-1])


def prf(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    tp = float(((predicted == 1) & (y == 1)).sum())
    fp = float(((predicted == 1) & (y == 0)).sum())
    fn = float(((predicted == 0) & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def fold_of(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % FOLDS


def cross_validate(x: np.ndarray, y: np.ndarray, folds: np.ndarray, lam: float) -> np.ndarray:
    """Out-of-fold probabilities."""
    out = np.zeros(len(y))
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        w, b = fit(x[train], y[train], lam)
        out[test] = 1.0 / (1.0 + np.exp(-(x[test] @ w + b)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print cross-validated figures, write nothing")
    args = parser.parse_args()

    rows: list[Example] = examples("dev")
    texts = [r.text for r in rows]
    y = np.array([1.0 if r.toxic else 0.0 for r in rows])
    x = feature_matrix(embed(texts), texts).astype(np.float64)
    folds = np.array([fold_of(t) for t in texts])
    print(f"dev rows: {len(rows)} ({int(y.sum())} toxic); by source: {dict(Counter(r.source for r in rows))}")

    best: tuple[float, float, float, np.ndarray] | None = None  # f1, lambda, threshold, oof
    for lam in LAMBDAS:
        oof = cross_validate(x, y, folds, lam)
        for threshold in np.arange(0.2, 0.81, 0.05):
            f1 = prf(y, (oof >= threshold).astype(int))[2]
            if best is None or f1 > best[0] + 1e-9:
                best = (f1, lam, float(threshold), oof)
    assert best is not None
    _, lam, threshold, oof = best
    predicted = (oof >= threshold).astype(int)
    p, r, f1 = prf(y, predicted)
    print(f"chosen lambda={lam} threshold={threshold:.2f}; {FOLDS}-fold CV on dev: P={p:.3f} R={r:.3f} F1={f1:.3f}")
    by_source = {}
    for source in ("toxigen", "self-written"):
        mask = np.array([row.source == source for row in rows])
        sp, sr, sf = prf(y[mask], predicted[mask])
        by_source[source] = {"precision": round(sp, 4), "recall": round(sr, 4), "f1": round(sf, 4)}
        print(f"  {source}: P={sp:.3f} R={sr:.3f} F1={sf:.3f} (n={int(mask.sum())})")
    if args.dry_run:
        return

    w, b = fit(x, y, lam)
    assert w.shape == (FEATURE_COUNT,)
    card = {
        "version": VERSION,
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "features": "all-MiniLM-L6-v2 sentence embedding (384) + 7 lexical features (lexicon.py)",
        "data": {
            "toxigen_women_dev": sum(1 for r in rows if r.source == "toxigen"),
            "self_written_dev": sum(1 for r in rows if r.source == "self-written"),
            "toxic": int(y.sum()),
            "neutral": int(len(y) - y.sum()),
        },
        "lambda": lam,
        "threshold": round(threshold, 2),
        "cv_dev": {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "by_source": by_source},
        "limits": "ToxiGen rows are about women only; other groups come from ~110 self-written statements",
    }
    ToxicityModel(w, b, card).save()
    print(f"wrote {VERSION} (threshold {threshold:.2f})")


if __name__ == "__main__":
    main()
