"""What the guard stages add to a call, with the shipped example policies and the real scanners (a benchmark,
not a test).

* per call: the input rules of `block-injection` + `redact-pii` over one user message, and the output rules of
  `redact-pii` over an answer of the same length (what the input and output guard stages run), for a short
  message and a 2,000-character one; median and p99 over repeated runs;
* streams: a 2,048-character answer fed to the hold-back scanner (`guards/policy/streaming.py`) in 4-character
  pieces, total scanner time per stream. `--compare FILE` also times another `streaming.py` (for example the
  previous version: `git show HEAD~1:src/pilothouse/guards/policy/streaming.py > /tmp/old_streaming.py`).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python bench/guard_stage_cost.py [--compare FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pilothouse.guards.policy.engine import CompiledRule, ScannerCache, compile_policy, evaluate
from pilothouse.guards.policy.loader import parse_policy
from pilothouse.guards.scanner import ScanContext

REPO = Path(__file__).resolve().parents[1]
SHORT = "Can you summarise the attached meeting notes and list the action items for Ann and Bob?"
LONG_UNIT = (
    "The quarterly review covered shipping delays in the northern region, the new returns process, and the "
    "customer survey, where most answers were positive about support but asked for faster refunds. "
)
ANSWER_UNIT = (
    "Here is a summary of the notes. The team agreed to move the launch by two weeks, Ann will draft the "
    "announcement, and Bob will check the budget with finance before Friday. "
)


def rules() -> tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...]]:
    cache = ScannerCache()
    policies = [
        compile_policy(parse_policy((REPO / "examples" / "policies" / name).read_text()), 1, cache)
        for name in ("block-injection.yaml", "redact-pii.yaml")
    ]
    return tuple(r for p in policies for r in p.input), tuple(r for p in policies for r in p.output)


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000.0)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def stream_ms(holdback: Any, output: tuple[CompiledRule, ...], text: str, piece: int) -> float:
    ctx = ScanContext(role="assistant", direction="output")
    h = holdback(output, ctx, window=64)
    started = time.perf_counter()
    out = [h.feed(text[i : i + piece]).text for i in range(0, len(text), piece)]
    out.append(h.finish().text)
    elapsed = (time.perf_counter() - started) * 1000.0
    assert "".join(out) == text, "a clean answer must come out unchanged"
    return elapsed


def load_holdback(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("compared_streaming", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.HoldBack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=Path, help="another streaming.py to time on the same streams")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    inputs, outputs = rules()
    user = ScanContext(role="user", direction="input")
    answer = ScanContext(role="assistant", direction="output")
    long_text = (LONG_UNIT * 20)[:2000]
    long_answer = (ANSWER_UNIT * 20)[:2000]
    print("per call (block-injection + redact-pii), ms: median / p99")
    for label, text, reply in (("short", SHORT, ANSWER_UNIT[: len(SHORT)]), ("2,000 chars", long_text, long_answer)):
        runs = args.runs if len(text) < 500 else max(20, args.runs // 4)
        in_med, in_p99 = timed(lambda t=text: evaluate(inputs, t, user), runs)  # type: ignore[misc]
        out_med, out_p99 = timed(lambda t=reply: evaluate(outputs, t, answer), runs)  # type: ignore[misc]
        print(
            f"  {label:>12}: input {in_med:6.2f} / {in_p99:6.2f}   output {out_med:6.2f} / {out_p99:6.2f}"
            f"   total {in_med + out_med:6.2f}"
        )
    text = (ANSWER_UNIT * 20)[:2048]
    whole_med, _ = timed(lambda: evaluate(outputs, text, answer), 20)
    from pilothouse.guards.policy.streaming import HoldBack

    candidates = [("current", HoldBack)] + ([("compared", load_holdback(args.compare))] if args.compare else [])
    print(f"stream of 2,048 chars in 4-char pieces (redact-pii output rules; one whole-text scan: {whole_med:.2f} ms)")
    for name, holdback in candidates:
        samples = sorted(stream_ms(holdback, outputs, text, 4) for _ in range(15))
        print(f"  {name:>9}: median {statistics.median(samples):6.2f} ms, min {samples[0]:6.2f} ms")


if __name__ == "__main__":
    main()
