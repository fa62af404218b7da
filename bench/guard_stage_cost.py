"""What the guard stages add to a call, with the shipped example policies and the real scanners (a benchmark,
not a test).

All figures are CPU time of this process (`time.process_time`).

* per call: the input rules of `block-injection` + `redact-pii` over one user message, and the output rules of
  `redact-pii` over an answer of the same length (what the input and output guard stages run), for a short
  message and a 2,000-character one; median and p99 over repeated runs;
* streams: a 2,048-character answer fed to the hold-back scanner (`guards/policy/streaming.py`) in 4-character
  pieces, total scanner time per stream. `--compare FILE` also times another `streaming.py` (for example the
  previous version: `git show HEAD~1:src/pilothouse/guards/policy/streaming.py > /tmp/old_streaming.py`).

* `--gateway`: CPU per request of the whole gateway, in process (the ASGI app on SQLite with the fake provider,
  called through raw ASGI messages, no HTTP; every thread's CPU, the trace writer's included:
  `time.process_time`), without a policy, with each example policy and with both, for the wall benchmark's
  request (`bench/overhead/common.py`) and answer (`bench/upstream.py`), plain and streamed. `--concurrency N`
  keeps N calls in flight (as wrk's 32 connections do), so the trace writer stores them in batches as in the
  wall benchmark; the default, 1, commits every trace alone, which costs more per request.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python bench/guard_stage_cost.py [--compare FILE]
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python bench/guard_stage_cost.py --gateway [--requests N]
        [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
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


def rules(
    names: tuple[str, ...] = ("block-injection.yaml", "redact-pii.yaml"),
) -> tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...]]:
    cache = ScannerCache()
    policies = [
        compile_policy(parse_policy((REPO / "examples" / "policies" / name).read_text()), 1, cache) for name in names
    ]
    return tuple(r for p in policies for r in p.input), tuple(r for p in policies for r in p.output)


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median and p99 CPU time of `fn` in ms (CPU, not wall: other load on the machine inflates it less)."""
    fn()  # warm
    samples = []
    for _ in range(runs):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) * 1000.0)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def stream_ms(holdback: Any, output: tuple[CompiledRule, ...], text: str, piece: int) -> float:
    ctx = ScanContext(role="assistant", direction="output")
    h = holdback(output, ctx, window=64)
    started = time.process_time()
    out = [h.feed(text[i : i + piece]).text for i in range(0, len(text), piece)]
    out.append(h.finish().text)
    elapsed = (time.process_time() - started) * 1000.0
    assert "".join(out) == text, "a clean answer must come out unchanged"
    return elapsed


def load_holdback(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("compared_streaming", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.HoldBack


GATEWAY_PROMPT = "Say hello in five words."  # bench/overhead/common.py's PROMPT
GATEWAY_REPLY = "Hello from the benchmark upstream."  # bench/upstream.py's REPLY_TEXT
GATEWAY_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("no policy", ()),
    ("block-injection", ("block-injection.yaml",)),
    ("redact-pii", ("redact-pii.yaml",)),
    ("both", ("block-injection.yaml", "redact-pii.yaml")),
)


class _Asgi:
    """The server application driven in this process through raw ASGI calls (its lifespan run), so the CPU
    measured is the gateway's, not an HTTP client's."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._started: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Asgi:
        async def send(message: dict[str, Any]) -> None:
            await self._started.put(message)

        self._task = asyncio.create_task(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, self._events.get, send)
        )
        await self._events.put({"type": "lifespan.startup"})
        message = await self._started.get()
        assert message["type"] == "lifespan.startup.complete", message
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._events.put({"type": "lifespan.shutdown"})
        await self._started.get()
        assert self._task is not None
        await self._task

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        raw = json.dumps(body).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"bench"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"authorization", f"Bearer {self.key}".encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        sent = False
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def gateway_cpu(policies: tuple[str, ...], requests: int, stream: bool, concurrency: int = 1) -> tuple[float, float]:
    """(CPU ms per request, wall ms per request) of `requests` chat calls through an in-process gateway with
    `policies` pushed (after a warm-up), `concurrency` of them in flight at a time; the CPU of every thread of
    the process, the trace writer's included."""
    import os
    import tempfile

    from pilothouse.config import Deployment, LocalModelSettings, ModelEntry, Settings
    from pilothouse.server.app import create_app

    admin = "ph-bench-admin-key-0123456789abcdef"
    os.environ["PILOTHOUSE_ADMIN_KEY"] = admin
    model = ModelEntry(
        name="bench-model", deployments=[Deployment(provider="fake", model="m", options={"reply": GATEWAY_REPLY})]
    )
    body = {"model": "bench-model", "messages": [{"role": "user", "content": GATEWAY_PROMPT}], "max_tokens": 16}
    body |= {"temperature": 0, "stream": stream}

    async def run(data: Path) -> tuple[float, float]:
        settings = Settings(
            data_dir=data,
            database_url=f"sqlite:///{data / 'pilothouse.db'}",
            include_default_models=False,
            models=[model],
            local=LocalModelSettings(preload=False),
            canary_check_interval_s=0,
        )
        async with _Asgi(create_app(settings), admin) as client:
            for name in policies:
                content = (REPO / "examples" / "policies" / name).read_text()
                status, raw = await client.post("/api/policies", {"content": content})
                assert status == 200, raw

            async def calls(count: int) -> None:
                for _ in range(count):
                    status, raw = await client.post("/v1/chat/completions", body)
                    assert status == 200, raw
                    assert stream or GATEWAY_REPLY.encode() in raw

            async def in_flight(total: int) -> None:  # `concurrency` callers share `total` calls
                shares = [total // concurrency + (i < total % concurrency) for i in range(concurrency)]
                await asyncio.gather(*(calls(share) for share in shares))

            await in_flight(max(20, requests // 10))  # warm: scanners built, models loaded, caches filled
            await asyncio.sleep(0.5)  # the warm-up's traces written
            cpu, wall = time.process_time(), time.perf_counter()
            await in_flight(requests)
            await asyncio.sleep(0.3)  # let the trace writer store the last batch (counted: its thread's CPU)
            return time.process_time() - cpu, time.perf_counter() - wall - 0.3

    with tempfile.TemporaryDirectory() as folder:
        cpu, wall = asyncio.run(run(Path(folder)))
    return cpu * 1000.0 / requests, wall * 1000.0 / requests


def gateway_main(requests: int, rounds: int, concurrency: int = 1) -> None:
    print(
        f"gateway CPU per request, in process ({requests} requests x {rounds} rounds, {concurrency} in flight, "
        "median), ms"
    )
    for stream in (False, True):
        results: dict[str, list[float]] = {name: [] for name, _ in GATEWAY_VARIANTS}
        for _ in range(rounds):  # alternating, so a busy spell falls on every variant
            for name, files in GATEWAY_VARIANTS:
                results[name].append(gateway_cpu(files, requests, stream, concurrency)[0])
        base = statistics.median(results["no policy"])
        print(f"  {'stream' if stream else 'plain'}:")
        for name, samples in results.items():
            med = statistics.median(samples)
            runs = ", ".join(f"{s:.3f}" for s in samples)
            print(f"    {name:>16}: {med:6.3f}  (+{med - base:6.3f} over no policy; runs {runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=Path, help="another streaming.py to time on the same streams")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--gateway", action="store_true", help="CPU per request of the in-process gateway instead")
    parser.add_argument("--requests", type=int, default=400, help="--gateway: requests per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="--gateway: alternating rounds per variant")
    parser.add_argument("--concurrency", type=int, default=1, help="--gateway: calls in flight at a time")
    args = parser.parse_args()
    if args.gateway:
        gateway_main(args.requests, args.rounds, max(1, args.concurrency))
        return
    inputs, outputs = rules()
    user = ScanContext(role="user", direction="input")
    answer = ScanContext(role="assistant", direction="output")
    long_text = (LONG_UNIT * 20)[:2000]
    long_answer = (ANSWER_UNIT * 20)[:2000]
    print("per call (block-injection + redact-pii), CPU ms: median / p99")
    for label, text, reply in (("short", SHORT, ANSWER_UNIT[: len(SHORT)]), ("2,000 chars", long_text, long_answer)):
        runs = args.runs if len(text) < 500 else max(20, args.runs // 4)
        in_med, in_p99 = timed(lambda t=text: evaluate(inputs, t, user), runs)  # type: ignore[misc]
        out_med, out_p99 = timed(lambda t=reply: evaluate(outputs, t, answer), runs)  # type: ignore[misc]
        print(
            f"  {label:>12}: input {in_med:6.2f} / {in_p99:6.2f}   output {out_med:6.2f} / {out_p99:6.2f}"
            f"   total {in_med + out_med:6.2f}"
        )
    print("the wall benchmark's request and answer (rules only), CPU ms per call: median")
    for name, files in GATEWAY_VARIANTS[1:]:
        ins, outs = rules(files)
        in_med, _ = timed(lambda r=ins: evaluate(r, GATEWAY_PROMPT, user), args.runs)  # type: ignore[misc]
        out_med, _ = timed(lambda r=outs: evaluate(r, GATEWAY_REPLY, answer), args.runs)  # type: ignore[misc]
        print(f"  {name:>16}: input {in_med:6.3f}   output {out_med:6.3f}   total {in_med + out_med:6.3f}")
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
