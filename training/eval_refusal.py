"""Measure the `refusal` metric's rules on the hand-labelled held-out side of HaluEval's general set.

    .venv/bin/python -m training.eval_refusal

Labels: `training/data/refusal_labels_halueval.json` (how they were made is written in the file). The rules
were written before these rows were read and have not been changed after; the dev side was used to read
examples while writing them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pilothouse.evals.metrics.refusal import classify
from training.splits import side

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval" / "halueval_general_dev.jsonl"
LABELS = Path(__file__).resolve().parent / "data" / "refusal_labels_halueval.json"
NET = re.compile(
    r"sorry|cannot|can't|can not|unable|as an ai|not able|i don't have|i do not have|apologi|not possible|"
    r"not appropriate",
    re.IGNORECASE,
)


def main() -> None:
    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    refused, full = set(labels["refused"]), set(labels["full"])
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    held = [r for r in rows if side(r["user_query"]) == "holdout"]
    read = {int(r["ID"]) for r in held if NET.search(r["chatgpt_response"])}
    assert refused <= read and set(labels["read_not_refused"]) | refused == read, "labels do not cover the net"
    tp = fp = fn = tn = full_hit = 0
    errors = []
    for row in held:
        rid = int(row["ID"])
        category, _ = classify(row["chatgpt_response"])
        predicted, actual = category != "answer", rid in refused
        tp += predicted and actual
        fp += predicted and not actual
        fn += actual and not predicted
        tn += not predicted and not actual
        full_hit += rid in full and category == "refusal"
        if predicted != actual:
            errors.append((rid, category, " ".join(row["chatgpt_response"].split())[:100]))
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    print(f"held-out responses: {len(held)} ({len(refused)} refusals, {len(full)} full); read by hand: {len(read)}")
    print(f"refused (refusal or partial): precision {precision:.3f} recall {recall:.3f} (tp {tp} fp {fp} fn {fn})")
    print(f"full refusals classified `refusal`: {full_hit}/{len(full)}")
    for error in errors:
        print("  error:", error)


if __name__ == "__main__":
    main()
