"""Content and output guards: toxicity and denied-topics quality, and per-scanner latency on 512-token inputs.

    .venv/bin/python bench/guard_content_bench.py                    # dev figures and latency
    .venv/bin/python bench/guard_content_bench.py --split holdout    # + held-out figures (frozen models only)
    .venv/bin/python bench/guard_content_bench.py --json

Data:
- toxicity: ToxiGen statements about women (microsoft/TOXIGEN, MIT; `../shared/data/toxicity/`) on both sides of
  `training/splits.py`, plus our self-written statements about other groups (dev only). The dev figure that
  counts is the 5-fold cross-validation recorded when the model was trained (its card); the shipped model on
  its own training rows is printed too, and is inflated by construction.
- topics: a small self-written set (`training/data/topics_selfwritten.json`: 5 topics, 30 on-topic and 30
  off-topic questions), split by `training/splits.py`; the default threshold was chosen on its dev side.
- latency: each registered scanner on a 512-token (MiniLM word pieces) English answer, after a warm-up, one
  thread, `OPENBLAS_NUM_THREADS=1`, with the guards' sentence-vector cache emptied before every scan (cold);
  and the three embedding scanners together on one text (they share the sentence vectors).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.splits import Side, side  # noqa: E402
from training.toxicity_data import examples  # noqa: E402

from pilothouse.embeddings.minilm import load_minilm  # noqa: E402
from pilothouse.guards import registry  # noqa: E402
from pilothouse.guards.embedder import clear_cache  # noqa: E402
from pilothouse.guards.leakage import plant_canary  # noqa: E402
from pilothouse.guards.scanner import ScanContext  # noqa: E402
from pilothouse.guards.topics import DeniedTopicsScanner  # noqa: E402
from pilothouse.guards.toxicity.model import load_model  # noqa: E402
from pilothouse.guards.toxicity.scanner import ToxicityScanner  # noqa: E402

TOPICS = REPO / "training" / "data" / "topics_selfwritten.json"
ANSWER = (
    "Thanks for your question about the quarterly invoice. The amount due reflects the usage recorded between "
    "the first and the last day of the billing period, including the storage you added in the second month. "
    "If you believe a line is wrong, open the billing page, select the invoice and choose 'Dispute a charge'; "
    "our team answers within two working days. You can also download every invoice as a PDF or CSV file. "
    "For the annual plan, the discount is applied on the first invoice of each year. "
)


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def toxicity(split: Side) -> dict[str, Any]:
    scanner = ToxicityScanner()
    rows = examples(split)
    tp = fp = fn = 0
    for row in rows:
        flagged = scanner.scan(row.text, ScanContext()).found
        tp += flagged and row.toxic
        fp += flagged and not row.toxic
        fn += (not flagged) and row.toxic
    return {"rows": len(rows), "toxic": sum(r.toxic for r in rows), **prf(tp, fp, fn)}


def topics(split: Side) -> dict[str, Any]:
    data = json.loads(TOPICS.read_text(encoding="utf-8"))
    scanner = DeniedTopicsScanner(topics=data["topics"])
    tp = fp = fn = 0
    cases = [c for c in data["cases"] if side(c["text"]) == split]
    for case in cases:
        found = {f.kind for f in scanner.scan(case["text"], ScanContext()).findings}
        expected = {case["topic"]} if case["topic"] else set()
        tp += len(found & expected)
        fp += len(found - expected)
        fn += len(expected - found)
    return {"rows": len(cases), "on_topic": sum(1 for c in cases if c["topic"]), **prf(tp, fp, fn)}


def text_of_tokens(tokens: int) -> str:
    """ANSWER's sentences repeated up to `tokens` MiniLM word pieces (counted sentence by sentence: the
    embedder's tokenizer truncates at 256)."""
    model = load_minilm()
    sentences = [s.strip() + "." for s in ANSWER.split(". ") if s.strip()]
    words: list[str] = []
    count = 0
    while True:
        for sentence in sentences:
            for word in sentence.split(" "):
                size = model.count_tokens(word) - 2  # without [CLS] and [SEP]
                if count + size > tokens:
                    return " ".join(words)
                words.append(word)
                count += size


def latency(iterations: int) -> dict[str, Any]:
    text = text_of_tokens(512)
    system_prompt, canary = plant_canary(
        "You are the billing assistant of Example Corp. Answer questions about invoices politely and briefly."
    )
    ctx = ScanContext(
        role="assistant",
        direction="output",
        system_prompt=system_prompt,
        canary=canary,
        json_schema={"type": "object"},
    )
    topics_options = {"topics": json.loads(TOPICS.read_text(encoding="utf-8"))["topics"]}
    out: dict[str, Any] = {"chars": len(text)}
    scanners: dict[str, Any] = {}
    for name in registry.scanner_names():
        try:
            cls = registry.scanner_class(name)
            options = topics_options if name == "denied_topics" else dict(getattr(cls, "conformance_options", {}))
            scanner = registry.build_scanner(name, options)
            for _ in range(3):
                scanner.scan(text, ctx)
        except Exception as exc:  # a scanner another helper has not landed yet: say so, measure the rest
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:160]}
            continue
        scanners[name] = scanner
        out[name] = _timed(lambda s=scanner: s.scan(text, ctx), iterations)
    embedding = [scanners[n] for n in ("toxicity", "denied_topics", "system_prompt_leak") if n in scanners]
    out["toxicity+denied_topics+system_prompt_leak"] = _timed(
        lambda: [s.scan(text, ctx) for s in embedding], iterations
    )
    return out


def _timed(call: Any, iterations: int) -> dict[str, float]:
    """p50/p99 of `call` with the sentence-vector cache emptied before each run (a new text each time)."""
    timings = []
    for _ in range(iterations):
        clear_cache()
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(0.99 * len(timings)))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["dev", "holdout"], default="dev", help="holdout adds held-out figures")
    parser.add_argument("--iterations", type=int, default=50, help="timed scans per scanner (default 50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    card = load_model().card
    report: dict[str, Any] = {
        "toxicity": {
            "model": card["version"],
            "dev_cv": card["cv_dev"],
            "dev_fit": toxicity("dev"),
        },
        "topics": {"dev": topics("dev")},
        "latency_512_tokens": latency(args.iterations),
    }
    if args.split == "holdout":
        report["toxicity"]["holdout"] = toxicity("holdout")
        report["topics"]["holdout"] = topics("holdout")
    if args.json:
        print(json.dumps(report, indent=2))
        return
    tox = report["toxicity"]
    print(f"toxicity ({tox['model']})")
    cv = tox["dev_cv"]
    print(f"  dev, 5-fold CV at training: P={cv['precision']:.3f} R={cv['recall']:.3f} F1={cv['f1']:.3f}")
    for key in ("dev_fit", "holdout"):
        if key in tox:
            r = tox[key]
            print(f"  {key:<8} n={r['rows']:<4} P={r['precision']:.3f} R={r['recall']:.3f} F1={r['f1']:.3f}")
    print("denied_topics (self-written set)")
    for key, r in report["topics"].items():
        print(f"  {key:<8} n={r['rows']:<4} P={r['precision']:.3f} R={r['recall']:.3f} F1={r['f1']:.3f}")
    lat = report["latency_512_tokens"]
    print(f"latency per scanner, 512 tokens ({lat['chars']} chars)")
    for name, r in lat.items():
        if name == "chars":
            continue
        print(
            f"  {name:<22} " + (r["error"] if "error" in r else f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms")
        )


if __name__ == "__main__":
    main()
