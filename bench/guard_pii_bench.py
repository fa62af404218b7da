"""PII and secrets scanners: span-level precision and recall per entity type, and latency.

PII figures come from `../shared/data/pii/presidio_generated_small.json` (microsoft/presidio-research, MIT),
split with `training/splits.py` by template id so sentences generated from one template stay on one side.
Rules were tuned on the `dev` side only; `--split holdout` is run once, after freezing them.

Two matching rules are reported per entity type:
- overlap: a predicted span is correct when it overlaps a gold span of the same type; a gold span is found
  when a predicted span of its type overlaps it (the usual "partial match" of NER evaluation);
- exact: start and end must be equal (after trimming spaces).

Secrets figures come from `tests/data/pii/secrets_cases.json`, a small set written for this project (fake keys
in real formats, and hard negatives); a text is a true positive when every expected kind is found in it.

    .venv/bin/python bench/guard_pii_bench.py                      # dev split, PII + secrets + latency
    .venv/bin/python bench/guard_pii_bench.py --split holdout --ner rules
    .venv/bin/python bench/guard_pii_bench.py --show-errors        # dev only: the misses and false alarms
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from training.splits import side  # noqa: E402

from pilothouse.guards.pii.scanner import PiiScanner  # noqa: E402
from pilothouse.guards.scanner import ScanContext  # noqa: E402
from pilothouse.guards.secrets import SecretsScanner  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "pii" / "presidio_generated_small.json"
SECRETS = ROOT / "tests" / "data" / "pii" / "secrets_cases.json"

TYPE_MAP = {
    "PERSON": "PERSON",
    "ADDRESS": "STREET_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
}
"""The dataset's entity types that the `pii` scanner detects, and its name for each."""
NOT_DETECTED = ("LOCATION", "ORGANIZATION", "TITLE", "DATE_TIME", "DOMAIN_NAME", "US_DRIVER_LICENSE")

Span = tuple[str, int, int]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def load_rows(split: str) -> list[dict[str, Any]]:
    rows = json.loads(DATA.read_text())
    if split == "all":
        return list(rows)
    return [r for r in rows if side(r["full_text"], key=str(r["template_id"])) == split]


def score_pii(scanner: PiiScanner, rows: list[dict[str, Any]], show_errors: bool) -> dict[str, dict[str, float]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        text = row["full_text"]
        gold: list[Span] = [
            (TYPE_MAP[s["entity_type"]], *_trim(text, s["start_position"], s["end_position"]))
            for s in row["spans"]
            if s["entity_type"] in TYPE_MAP
        ]
        pred: list[Span] = [(f.kind, *_trim(text, f.start, f.end)) for f in scanner.find(text)]
        for kind, s, e in pred:
            hit = any(k == kind and s < ge and gs < e for k, gs, ge in gold)
            counts[kind]["pred"] += 1
            counts[kind]["pred_overlap_ok"] += hit
            counts[kind]["pred_exact_ok"] += (kind, s, e) in gold
            if show_errors and not hit:
                print(f"  FALSE ALARM {kind}: {text[s:e]!r}  in {text[:90]!r}")
        for kind, gs, ge in gold:
            hit = any(k == kind and s < ge and gs < e for k, s, e in pred)
            counts[kind]["gold"] += 1
            counts[kind]["gold_overlap_ok"] += hit
            counts[kind]["gold_exact_ok"] += (kind, gs, ge) in pred
            if show_errors and not hit:
                print(f"  MISSED {kind}: {text[gs:ge]!r}  in {text[:90]!r}")
    table: dict[str, dict[str, float]] = {}
    for kind, c in sorted(counts.items()):
        table[kind] = {
            "gold": c["gold"],
            "predicted": c["pred"],
            "precision_overlap": c["pred_overlap_ok"] / c["pred"] if c["pred"] else float("nan"),
            "recall_overlap": c["gold_overlap_ok"] / c["gold"] if c["gold"] else float("nan"),
            "precision_exact": c["pred_exact_ok"] / c["pred"] if c["pred"] else float("nan"),
            "recall_exact": c["gold_exact_ok"] / c["gold"] if c["gold"] else float("nan"),
        }
    return table


def score_secrets(scanner: SecretsScanner, show_errors: bool) -> dict[str, float]:
    cases = json.loads(SECRETS.read_text())["cases"]
    tp = fp = fn = tn = 0
    for case in cases:
        found = {f.kind for f in scanner.scan(case["text"], ScanContext()).findings}
        expected = set(case["kinds"])
        if expected:
            if expected <= found:
                tp += 1
            else:
                fn += 1
                if show_errors:
                    print(f"  MISSED {sorted(expected - found)} in {case['text'][:90]!r}")
        elif found:
            fp += 1
            if show_errors:
                print(f"  FALSE ALARM {sorted(found)} in {case['text'][:90]!r}")
        else:
            tn += 1
    return {
        "positives": tp + fn,
        "negatives": fp + tn,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "false_positive_rate": fp / (fp + tn) if fp + tn else float("nan"),
    }


def long_text(rows: list[dict[str, Any]], tokens: int = 512) -> tuple[str, int]:
    """Dataset sentences joined until `tokens` word pieces of the bundled MiniLM tokenizer."""
    from tokenizers import Tokenizer

    from pilothouse.embeddings.minilm import default_model_dir

    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    parts: list[str] = []
    count = 0
    while count < tokens:
        for row in rows:
            parts.append(row["full_text"])
            count = len(tokenizer.encode(" ".join(parts), add_special_tokens=False).ids)
            if count >= tokens:
                break
    return " ".join(parts), count


def latency(scanner: Any, text: str, runs: int) -> dict[str, float]:
    ctx = ScanContext()
    scanner.scan(text, ctx)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        scanner.scan(text, ctx)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "holdout", "all"), default="dev")
    parser.add_argument("--ner", choices=("auto", "rules", "spacy"), default="auto")
    parser.add_argument("--phone-leniency", default="possible")
    parser.add_argument("--runs", type=int, default=200, help="latency runs per scanner")
    parser.add_argument("--show-errors", action="store_true", help="print misses and false alarms (dev only)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.show_errors and args.split != "dev":
        parser.error("--show-errors is for the dev split only: held-out errors are not looked at")
    pii = PiiScanner(ner=args.ner, phone_leniency=args.phone_leniency)
    rows = load_rows(args.split)
    report: dict[str, Any] = {
        "split": args.split,
        "rows": len(rows),
        "person_names_by": "spaCy NER" if pii.uses_ner else "rules",
        "pii": score_pii(pii, rows, args.show_errors),
        "not_detected": list(NOT_DETECTED),
        "secrets_self_written": score_secrets(SecretsScanner(), args.show_errors),
    }
    if args.runs:
        text, tokens = long_text(load_rows("dev"))
        report["latency_512_tokens"] = {
            "tokens": tokens,
            "pii": latency(pii, text, args.runs),
            "secrets": latency(SecretsScanner(), text, args.runs),
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"split={report['split']} rows={report['rows']} person names by {report['person_names_by']}")
    print(f"{'entity':16} {'gold':>5} {'pred':>5} {'P(ovl)':>7} {'R(ovl)':>7} {'P(exact)':>9} {'R(exact)':>9}")
    for kind, m in report["pii"].items():
        print(
            f"{kind:16} {m['gold']:5d} {m['predicted']:5d} {m['precision_overlap']:7.2f} {m['recall_overlap']:7.2f}"
            f" {m['precision_exact']:9.2f} {m['recall_exact']:9.2f}"
        )
    print(f"not detected (dataset types): {', '.join(NOT_DETECTED)}")
    s = report["secrets_self_written"]
    print(
        f"secrets (self-written set, {s['positives']} positives, {s['negatives']} negatives): "
        f"precision {s['precision']:.2f} recall {s['recall']:.2f} FPR {s['false_positive_rate']:.2f}"
    )
    for name, m in report.get("latency_512_tokens", {}).items():
        if isinstance(m, dict):
            tokens = report["latency_512_tokens"]["tokens"]
            print(f"latency {name} ({tokens} tokens): p50 {m['p50_ms']:.2f} ms p99 {m['p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
