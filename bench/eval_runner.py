"""Runner throughput: Pilothouse's experiment runner against deepeval, both over one fast fixed-delay upstream.

One run, all on loopback:

1. start `bench/upstream.py` (an OpenAI-compatible server answering after `--delay-ms`, 20 ms by default), its
   reply set to a judge's verdict (`{"score": 4, "reason": "fine"}`) so that the same upstream serves as the model
   under test and as the judge;
2. Pilothouse: `pilothouse up` with two models on that upstream (`bench-model`, `bench-judge`), a dataset of
   `--items` questions, and one experiment: the model answers every item and `llm_judge` (judge `bench-judge`)
   scores every answer, `--concurrency` items in flight; timed from the start request to the run being done
   (through the gateway in process: traces, cost, the cap, results committed per item). Also the same run with
   a deterministic metric only (`contains`), which shows the runner without the judge;
3. deepeval (`bench/.venv-deepeval`, created from `bench/requirements-deepeval.txt` on first use): the same items
   answered by the same upstream model (AsyncOpenAI, same concurrency), then `deepeval.evaluate` with `GEval`
   (explicit evaluation steps, so no extra call to write them) judged by the same upstream through a
   `DeepEvalBaseLLM`, `max_concurrent` = the concurrency; timed from the first answer call to the end of the
   evaluation.

Printed: items per second, and the overhead per item: the wall time beyond what the upstream's delay alone
imposes (calls per item x delay / concurrency), per item. Pilothouse over deepeval ratios at the end.

    .venv/bin/python bench/eval_runner.py                          # 200 items, concurrency 8: ~1 min when quiet
    .venv/bin/python bench/eval_runner.py --items 500 --concurrency 16 --delay-ms 20
    .venv/bin/python bench/eval_runner.py --skip-deepeval --json

It is a benchmark, not a test: deepeval needs PyPI on first use; both sides share the machine's cores with the
upstream, so on a loaded machine the figures move (run it on a quiet one for the record).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from eval_common import free_port, model_block, start_pilothouse
from pilothouse.sdk.client import Pilothouse

BENCH = Path(__file__).resolve().parent
VERDICT = '{"score": 4, "reason": "fine"}'
PEER_VENV = BENCH / ".venv-deepeval"
RUBRIC = "The answer responds to the question."
STEPS = ["Read the question.", "Read the answer.", "Score how well the answer responds to the question."]


def start_upstream(delay_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); import upstream as u; "
        f"u.REPLY_PIECES = ({VERDICT!r},); u.REPLY_TEXT = {VERDICT!r}; u.REPLY_TOKENS = 1; "
        f"sys.exit(u.main(['--port', '{port}', '--delay-ms', '{delay_ms}']))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the upstream did not start")


def run_pilothouse(upstream: str, items: int, concurrency: int, folder: Path) -> dict[str, Any]:
    config = "include_default_models = false\n\n[local]\npreload = false\n\n"
    config += model_block("bench-model", "m", upstream + "/v1", price="1")
    config += model_block("bench-judge", "j", upstream + "/v1", price="1")
    server = start_pilothouse(folder, config)
    out: dict[str, Any] = {}
    try:
        with Pilothouse(server.url, server.key, timeout=120.0) as ph:
            for label, metrics, calls in (
                (
                    "judged",
                    [{"name": "llm_judge", "options": {"criteria": RUBRIC, "steps": STEPS, "model": "bench-judge"}}],
                    2,
                ),
                ("deterministic", [{"name": "contains", "options": {"value": "score"}}], 1),
            ):
                name = f"bench-{label}"
                ph.push_dataset(
                    name, [{"id": f"q{i}", "input": f"Question number {i}: what is {i} + {i}?"} for i in range(items)]
                )
                started = time.perf_counter()
                run = ph.start_experiment(
                    name,
                    dataset=name,
                    variants=[{"name": "m", "model": "bench-model"}],
                    metrics=metrics,
                    concurrency=concurrency,
                )
                final = ph.wait_experiment(run["id"], timeout_s=1800, poll_s=0.05)
                seconds = time.perf_counter() - started
                if final["status"] != "done" or final["progress"]["errors"]:
                    raise RuntimeError(f"pilothouse run {label} ended {final['status']}: {final}")
                judged = final["summary"]["m"]["metrics"][metrics[0]["name"]]["judged"]
                out[label] = {"seconds": seconds, "calls_per_item": calls, "judged": judged}
    finally:
        server.stop()
    return out


PEER_SCRIPT = (
    textwrap.dedent(
        """
    import asyncio, json, sys, time
    from openai import AsyncOpenAI
    from deepeval import evaluate
    from deepeval.evaluate.configs import AsyncConfig, DisplayConfig, CacheConfig, ErrorConfig
    from deepeval.metrics import GEval
    from deepeval.models.base_model import DeepEvalBaseLLM
    from deepeval.test_case import LLMTestCase, LLMTestCaseParams

    url, items, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    client = AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0)

    class Upstream(DeepEvalBaseLLM):
        def __init__(self):
            self.sync = __import__("openai").OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
            self.client = AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0)  # used on evaluate's loop
        def load_model(self):
            return self
        def generate(self, prompt, schema=None):
            reply = self.sync.chat.completions.create(model="j", messages=[{"role": "user", "content": prompt}])
            return reply.choices[0].message.content
        async def a_generate(self, prompt, schema=None):
            reply = await self.client.chat.completions.create(model="j", messages=[{"role": "user", "content": prompt}])
            return reply.choices[0].message.content
        def get_model_name(self):
            return "bench-judge"

    async def answers():
        gate = asyncio.Semaphore(concurrency)
        async def one(i):
            async with gate:
                q = f"Question number {i}: what is {i} + {i}?"
                reply = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": q}])
                return LLMTestCase(input=q, actual_output=reply.choices[0].message.content)
        return await asyncio.gather(*(one(i) for i in range(items)))

    started = time.perf_counter()
    cases = asyncio.run(answers())
    metric = GEval(name="responds", criteria=__RUBRIC__, evaluation_steps=__STEPS__,
                   evaluation_params=[LLMTestCaseParams.INPUT, LLMTestCaseParams.ACTUAL_OUTPUT],
                   model=Upstream(), async_mode=True)
    result = evaluate(cases, [metric], async_config=AsyncConfig(max_concurrent=concurrency),
                      display_config=DisplayConfig(show_indicator=False, print_results=False, inspect_after_run=False),
                      cache_config=CacheConfig(write_cache=False, use_cache=False),
                      error_config=ErrorConfig(ignore_errors=False))
    seconds = time.perf_counter() - started
    scored = sum(1 for t in result.test_results for m in (t.metrics_data or []) if m.score is not None)
    print(json.dumps({"seconds": seconds, "calls_per_item": 2, "judged": scored}))
    """
    )
    .replace("__RUBRIC__", repr(RUBRIC))
    .replace("__STEPS__", repr(STEPS))
)


def ensure_peer() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print("creating bench/.venv-deepeval (first use) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        requirements = BENCH / "requirements-deepeval.txt"
        subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True)
    return python


def run_deepeval(upstream: str, items: int, concurrency: int, folder: Path) -> dict[str, Any]:
    python = ensure_peer()
    script = folder / "deepeval_side.py"
    script.write_text(PEER_SCRIPT, encoding="utf-8")
    env = {
        **os.environ,
        "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
        "DEEPEVAL_NO_INSPECT_PROMPT": "1",
        "ERROR_REPORTING": "NO",
    }
    env["HOME"] = str(folder)  # deepeval writes its own files (.deepeval) under the working folder and home
    found = subprocess.run(
        [str(python), str(script), upstream, str(items), str(concurrency)],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=1800,
        check=False,
    )
    if found.returncode != 0:
        raise RuntimeError(f"the deepeval side failed:\n{found.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(found.stdout.strip().splitlines()[-1])
    return result


def figures(side: dict[str, Any], items: int, concurrency: int, delay_s: float) -> dict[str, Any]:
    ideal = items * side["calls_per_item"] * delay_s / concurrency
    return {
        **side,
        "items_per_s": items / side["seconds"],
        "overhead_ms_per_item": max(0.0, side["seconds"] - ideal) * 1000 / items,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--skip-deepeval", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 32:
        parser.error("--concurrency is 1 to 32 (an experiment's limit)")
    delay_s = args.delay_ms / 1000
    proc, upstream = start_upstream(args.delay_ms)
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="eval-runner-") as folder:
            ours = run_pilothouse(upstream, args.items, args.concurrency, Path(folder) / "pilothouse")
            for label, side in ours.items():
                results[f"pilothouse ({label})"] = figures(side, args.items, args.concurrency, delay_s)
            if not args.skip_deepeval:
                peer_folder = Path(folder) / "deepeval"
                peer_folder.mkdir()
                side = run_deepeval(upstream, args.items, args.concurrency, peer_folder)
                results["deepeval (GEval)"] = figures(side, args.items, args.concurrency, delay_s)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if args.json:
        print(
            json.dumps(
                {"items": args.items, "concurrency": args.concurrency, "delay_ms": args.delay_ms, "results": results},
                indent=2,
            )
        )
        return 0
    print(f"{args.items} items, concurrency {args.concurrency}, upstream delay {args.delay_ms:g} ms (answer + judge)")
    print(f"{'side':28} {'seconds':>8} {'items/s':>8} {'overhead ms/item':>17} {'judged':>7}")
    for label, r in results.items():
        print(
            f"{label:28} {r['seconds']:8.2f} {r['items_per_s']:8.1f} {r['overhead_ms_per_item']:17.2f} {r['judged']:7d}"
        )
    ours, peer = results.get("pilothouse (judged)"), results.get("deepeval (GEval)")
    if ours and peer:
        print(
            f"pilothouse / deepeval: items/s x{ours['items_per_s'] / peer['items_per_s']:.2f}, "
            f"overhead per item x{ours['overhead_ms_per_item'] / max(peer['overhead_ms_per_item'], 1e-9):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
