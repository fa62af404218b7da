"""Injection scanners: detection, false positives and F1 per source, and latency for a 512-token input.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/guard_injection_bench.py --split dev
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/guard_injection_bench.py --split holdout   # once, model frozen
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/guard_injection_bench.py --latency
    PYTHONPATH=. /tmp/llmguard/bin/python bench/guard_injection_bench.py --llm-guard --split holdout
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/guard_injection_bench.py --set generated           # generator split
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/guard_injection_bench.py --set indirect_tune       # tuning half
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/guard_injection_bench.py --set indirect_heldout    # once per version
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/guard_injection_bench.py --set indirect_holdout2   # used (run once)

Sources (see `training/injection_data.py`): direct mode, in-the-wild jailbreaks (attacks) against benign
prompts (IFEval, MT-Bench, GSM8K), NotInject hard negatives and HaluEval user queries; HarmBench requests
are reported apart ("info": harmful requests, not injections). Indirect mode, BIPIA attack instructions
planted at the start, middle or end of benign documents (e-mails, CISI abstracts, chat answers) against the
documents alone. A text counts as flagged when the verdict's score is at least 0.5 (the default threshold).

Indirect mode only, by attack class and carrier:
- `--set generated`: synthetic documents of `training/indirect_documents.py`, both generator sides (`train`:
  templates the indirect head was trained on, fresh draws; `test`: carriers and templates it never saw);
- `--set indirect_holdout`: `bench/data/indirect_holdout.jsonl`, 420 documents written apart from this code
  (fields `text`, `label` attack/benign, `class`, `domain`, `carrier`); used, so now development data, split
  by a fixed rule (`indirect_part`) into `--set indirect_tune` (read while tuning) and `--set
  indirect_heldout` (run once per frozen version, never read item by item);
- `--set indirect_holdout2`: `bench/data/indirect_holdout2.jsonl` (used), a second independent set with the same
  schema, passed by the maintainers only, once;
- `--set indirect_sets_dev` / `--set indirect_sets_heldout`: sets 1 and 2 together, split by
  `training/indirect_sets.py` (70% dev, trained on; 30% held out, run once per frozen model, read per class only);
- `--set NAME --data PATH`: any JSONL file with the same schema (`id`, `text`, `label` attack/benign, `class`,
  `domain`, `carrier`), for example a new independent set: `--set indirect_holdout3 --data /path/set3.jsonl`.
  Only the `injection` scanner (the one policies use) is run unless `--all-scanners` is given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.injection_data import Sample, direct_samples, indirect_samples

Flag = Callable[[str, bool], bool]
"""(text, indirect) -> flagged."""

THRESHOLD = 0.5


def _rows(split: str) -> list[tuple[str, Sample]]:
    direct = [("direct", s) for s in direct_samples() if s.side == split]
    indirect = [("indirect", s) for s in indirect_samples(split)]  # type: ignore[arg-type]
    return direct + indirect


def _table(name: str, rows: list[tuple[str, Sample]], flagged: list[bool]) -> None:
    print(f"\n## {name}")
    print("| mode | source | kind | n | flagged |")
    print("|---|---|---|---:|---:|")
    groups: dict[tuple[str, str, int], list[bool]] = {}
    for (mode, sample), hit in zip(rows, flagged, strict=True):
        groups.setdefault((mode, sample.source, sample.label), []).append(hit)
    for (mode, source, label), hits in sorted(groups.items()):
        kind = {1: "attack", 0: "benign", -1: "info"}[label]
        print(f"| {mode} | {source} | {kind} | {len(hits)} | {sum(hits) / len(hits):.1%} |")
    for mode in ("direct", "indirect"):
        tp = sum(h for (m, s), h in zip(rows, flagged, strict=True) if m == mode and s.label == 1)
        pos = sum(1 for m, s in rows if m == mode and s.label == 1)
        fp = sum(h for (m, s), h in zip(rows, flagged, strict=True) if m == mode and s.label == 0)
        neg = sum(1 for m, s in rows if m == mode and s.label == 0)
        recall = tp / pos if pos else 0.0
        precision = tp / (tp + fp) if tp + fp else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(f"| {mode} | **all** | detection {recall:.1%} | FP {fp}/{neg} = {fp / max(neg, 1):.2%} | F1 {f1:.3f} |")


INDIRECT_HOLDOUT = Path(__file__).resolve().parent / "data" / "indirect_holdout.jsonl"
INDIRECT_HOLDOUT2 = Path(__file__).resolve().parent / "data" / "indirect_holdout2.jsonl"
"""The second independent set, written apart from this code; only the maintainers pass it, once."""
INDIRECT_SPLIT_SALT = "indirect-holdout-420-v1"
INDIRECT_SPLIT_PERCENT = 50
"""The used 420-document set is development data now, split by a fixed rule: groups of (class, domain), so
near-duplicates stay together, half `tune` (looked at while tuning), half `heldout` (never looked at, read
once per frozen model)."""
INDIRECT_SETS = (
    "generated",
    "indirect_holdout",
    "indirect_tune",
    "indirect_heldout",
    "indirect_holdout2",
    "indirect_sets_dev",
    "indirect_sets_heldout",
)


def indirect_part(row: dict[str, object]) -> str:
    """`tune` or `heldout`: the side of a row of the 420-document set (fixed rule, see INDIRECT_SPLIT_SALT)."""
    from training.splits import side

    key = f"{row.get('class')}|{row.get('domain')}"
    picked = side("", key=key, salt=INDIRECT_SPLIT_SALT, percent=INDIRECT_SPLIT_PERCENT)
    return "heldout" if picked == "holdout" else "tune"


def _labelled_set(name: str, data: Path | None = None) -> list[tuple[str, int, str, str]]:
    """(text, label, class, carrier) rows of an indirect-only set (`data`: a JSONL file of the sets' schema)."""
    if data is not None or name.startswith("indirect_sets_"):
        from training.indirect_sets import read_set, set_docs

        if data is not None:
            docs = read_set(data)
        else:
            part = name.removeprefix("indirect_sets_")
            docs = [d for d in set_docs() if d.part == part]
        return [(d.text, d.label, d.cls, f"{d.domain}/{d.carrier}") for d in docs]
    if name == "generated":
        from training.indirect_documents import documents
        from training.indirect_templates import GenSide

        GEN_SIDES: tuple[GenSide, ...] = ("train", "test")

        return [
            (d.text, d.label, d.kind, f"{side}:{d.carrier}")
            for side in GEN_SIDES
            for d in documents(side, 1400, seed=2024)
        ]
    path = INDIRECT_HOLDOUT2 if name == "indirect_holdout2" else INDIRECT_HOLDOUT
    half = {"indirect_tune": "tune", "indirect_heldout": "heldout"}.get(name)
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if half is not None and indirect_part(row) != half:
                continue
            raw = row["label"]  # "attack" / "benign" (bench/data/indirect_holdout.md), or 1 / 0
            label = {"attack": 1, "benign": 0}[raw] if isinstance(raw, str) else int(raw)
            kind = str(row.get("class") or ("benign" if label == 0 else "attack"))
            carrier = f"{row.get('domain', '-')}/{row.get('carrier', '-')}"
            rows.append((str(row["text"]), label, kind, carrier))
    return rows


def indirect_set(name: str, data: Path | None = None, all_scanners: bool = True) -> None:
    """Detection per attack class and carrier, false positives per carrier, for the pilothouse scanners."""
    rows = _labelled_set(name, data)
    print(f"# indirect mode, set {name}, {len(rows)} documents, threshold {THRESHOLD}")
    _print_version()
    for scanner, flag in pilothouse_flaggers().items():
        if not all_scanners and scanner != "injection":
            continue
        started = time.perf_counter()
        flagged = [flag(text, True) for text, *_ in rows]
        print(f"\n## {scanner} ({time.perf_counter() - started:.1f}s)")
        for title, key in (("attack class", 2), ("carrier", 3)):
            print(f"\n| {title} | attacks | detected | benign | false positives |")
            print("|---|---:|---:|---:|---:|")
            groups: dict[str, list[tuple[int, bool]]] = {}
            for row, hit in zip(rows, flagged, strict=True):
                groups.setdefault(str(row[key]), []).append((int(row[1]), hit))
            for group, hits in sorted(groups.items()):
                pos = [h for label, h in hits if label == 1]
                neg = [h for label, h in hits if label == 0]
                det = f"{sum(pos) / len(pos):.1%}" if pos else "-"
                fp = f"{sum(neg) / len(neg):.1%}" if neg else "-"
                print(f"| {group} | {len(pos)} | {det} | {len(neg)} | {fp} |")
        for side in sorted({r[3].split(":")[0] for r in rows}) if name == "generated" else ["all"]:
            picked = [
                (r[1], h) for r, h in zip(rows, flagged, strict=True) if side == "all" or r[3].startswith(side + ":")
            ]
            pos = [h for label, h in picked if label == 1]
            neg = [h for label, h in picked if label == 0]
            caught, false = sum(pos), sum(neg)
            recall = caught / max(len(pos), 1)
            precision = caught / (caught + false) if caught + false else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            print(
                f"\n**{side}**: detection {caught}/{len(pos)} = {recall:.1%}, "
                f"false positives {false}/{len(neg)} = {false / max(len(neg), 1):.2%}, "
                f"precision {precision:.3f}, F1 {f1:.3f}"
            )


def _print_version() -> None:
    from pilothouse.guards.injection.indirect import RULES_VERSION
    from pilothouse.guards.injection.indirect_model import load_indirect_model

    model = load_indirect_model()
    print(f"rules {RULES_VERSION}, indirect model {model.version} (threshold {model.threshold:.4f}, scores 0.5)")


def pilothouse_flaggers() -> dict[str, Flag]:
    from pilothouse.guards.registry import build_scanner
    from pilothouse.guards.scanner import ScanContext, Scanner

    direct, indirect = ScanContext(), ScanContext(role="document", mode="indirect")
    out: dict[str, Flag] = {}
    for name in ("injection_heuristics", "injection_classifier", "injection"):
        scanner = build_scanner(name)

        def flag(text: str, ind: bool, scanner: Scanner = scanner) -> bool:
            return scanner.scan(text, indirect if ind else direct).score >= THRESHOLD

        out[name] = flag
    return out


def llm_guard_flaggers() -> dict[str, Flag]:
    """llm-guard's scanners that run offline (rule-based); the DeBERTa PromptInjection scanner needs a
    Hugging Face download, which this machine cannot make (tried, reported)."""
    from llm_guard.input_scanners import BanSubstrings, InvisibleText  # type: ignore[import-not-found]

    out: dict[str, Flag] = {}
    invisible = InvisibleText()
    out["llm_guard.InvisibleText"] = lambda text, ind: not invisible.scan(text)[1]
    phrases = [
        "ignore previous instructions",
        "ignore all previous instructions",
        "disregard previous instructions",
        "ignore the above",
        "developer mode",
        "do anything now",
        "jailbreak",
        "system prompt",
    ]
    banned = BanSubstrings(substrings=phrases, match_type="str", case_sensitive=False, redact=False, contains_all=False)
    out["llm_guard.BanSubstrings(8 common phrases)"] = lambda text, ind: not banned.scan(text)[1]
    try:
        from llm_guard.input_scanners import PromptInjection

        injection = PromptInjection()
        out["llm_guard.PromptInjection"] = lambda text, ind: not injection.scan(text)[1]
    except Exception as exc:
        print(f"llm_guard.PromptInjection unavailable offline: {type(exc).__name__}: {str(exc)[:200]}")
    return out


def prompt_of_tokens(tokens: int) -> str:
    """A benign instruction-heavy text of about `tokens` MiniLM tokens (IFEval prompts joined; each prompt is
    counted on its own, under the tokenizer's 256-token truncation)."""
    from pilothouse.embeddings import load_minilm

    model = load_minilm()
    texts = [s.text for s in direct_samples() if s.source == "benign_ifeval" and s.side == "dev"]
    parts: list[str] = []
    count = 2  # [CLS] and [SEP]
    for text in texts:
        n = model.count_tokens(text) - 2
        if count + n > tokens:
            break
        parts.append(text)
        count += n
    return "\n".join(parts)


def latency(runs: int) -> None:
    from pilothouse.guards.registry import build_scanner
    from pilothouse.guards.scanner import ScanContext

    text = prompt_of_tokens(512)
    print(f"\n## latency, one {len(text)}-character input of ~512 tokens, {runs} runs (ms)")
    print("| scanner | p50 | p99 |")
    print("|---|---:|---:|")
    ctx = ScanContext()
    built = []
    for name in ("injection_heuristics", "injection_classifier", "injection", "pii", "secrets", "toxicity"):
        try:
            built.append((name, build_scanner(name)))
        except Exception as exc:
            print(f"| {name} | not available: {type(exc).__name__} | |")
    for mode_ctx, label in ((ctx, "direct"), (ScanContext(role="document", mode="indirect"), "indirect")):
        for name, scanner in built:
            if label == "indirect" and not name.startswith("injection"):
                continue
            scanner.scan(text, mode_ctx)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                scanner.scan(text, mode_ctx)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            print(f"| {name} ({label}) | {statistics.median(times):.2f} | {times[int(0.99 * (len(times) - 1))]:.2f} |")
    together = [s for n, s in built if n != "injection_heuristics" and n != "injection_classifier"]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for scanner in together:
            scanner.scan(text, ctx)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    names = ", ".join(n for n, _ in built if n not in ("injection_heuristics", "injection_classifier"))
    p50, p99 = statistics.median(times), times[int(0.99 * (len(times) - 1))]
    print(f"| all input scanners together ({names}) | {p50:.2f} | {p99:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=["dev", "holdout"], default="dev")
    parser.add_argument("--latency", action="store_true", help="latency only")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--llm-guard", action="store_true", help="run llm-guard's offline scanners instead")
    parser.add_argument(
        "--set",
        help=f"an indirect-mode set instead of the split's sources: {', '.join(INDIRECT_SETS)}, "
        "or any name with --data",
    )
    parser.add_argument("--data", type=Path, help="a JSONL file with the indirect sets' schema, for --set")
    parser.add_argument("--all-scanners", action="store_true", help="with --data: every injection scanner")
    args = parser.parse_args()
    if args.set:
        if args.data is None and args.set not in INDIRECT_SETS:
            parser.error(f"--set {args.set} needs --data PATH (known sets: {', '.join(INDIRECT_SETS)})")
        indirect_set(args.set, args.data, all_scanners=args.data is None or args.all_scanners)
        return
    if args.latency:
        latency(args.runs)
        return
    rows = _rows(args.split)
    flaggers = llm_guard_flaggers() if args.llm_guard else pilothouse_flaggers()
    print(f"# injection scanners, split {args.split}, threshold {THRESHOLD}")
    for name, flag in flaggers.items():
        started = time.perf_counter()
        flagged = [flag(s.text, mode == "indirect") for mode, s in rows]
        _table(f"{name} ({time.perf_counter() - started:.1f}s)", rows, flagged)


if __name__ == "__main__":
    main()
