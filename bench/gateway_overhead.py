"""Gateway overhead benchmark: Pilothouse against the LiteLLM proxy, both in front of a fast fake upstream.

One run, all on loopback:

1. start `bench/upstream.py`, an OpenAI-compatible server that answers chat completions after a fixed
   delay (20 ms by default);
2. measure with `wrk` (32 connections, 2 threads, a POST of a small chat-completions body) three
   targets in turn, each after a warm-up run: the upstream directly, the LiteLLM proxy (one worker, no
   database, installed into `bench/.venv-litellm` from `bench/requirements-litellm.txt` on first use)
   and Pilothouse (`pilothouse up` from the project's `.venv`); only one gateway runs at a time;
3. print req/s, p50 and p99 latency, the median latency each gateway adds over the direct run, and
   whether Pilothouse meets its targets: req/s >= 0.5 x direct, req/s >= 5 x LiteLLM, added median
   latency <= 0.25 x LiteLLM's.

    .venv/bin/python bench/gateway_overhead.py                     # everything, ~70 s when quiet
    .venv/bin/python bench/gateway_overhead.py --skip-litellm --duration 10
    .venv/bin/python bench/gateway_overhead.py --json > results.json

It is a benchmark, not a test: it needs `wrk` (`apt-get install -y wrk`) and, for LiteLLM, PyPI access on
first use. See bench/README.md for what the numbers mean and their limits (wrk, the upstream and the
gateway share the machine's cores).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
MODEL = "bench-model"
LITELLM_MASTER_KEY = "sk-bench-litellm-master-key"
PILOTHOUSE_ADMIN_KEY = "ph-bench-admin-key-0123456789abcdef"
PROMPT = "Say hello in five words."

# Other processes using more than this share of all CPUs during a run skew its numbers.
BUSY_THRESHOLD_PCT = 10.0

# Targets for Pilothouse.
MIN_RPS_VS_DIRECT = 0.5
MIN_RPS_VS_LITELLM = 5.0
MAX_ADDED_P50_VS_LITELLM = 0.25

WRK_LUA = """\
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Processes


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"

    def log_errors(self) -> tuple[int, str | None]:
        """How many error lines (ERROR, CRITICAL, Traceback) the server logged, and the first one."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0, None
        hits = [line for line in text.splitlines() if _LOG_ERROR.search(line)]
        return len(hits), (hits[0][:300] if hits else None)


_LOG_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b|^Traceback")


class Processes:
    """Every subprocess the benchmark starts, each in its own session so its whole group can be ended."""

    def __init__(self) -> None:
        self._servers: list[Server] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        base_url: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        cpus: set[int] | None = None,
    ) -> Server:
        log(f"starting {name}: {' '.join(argv)}")
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_affinity_setter(cpus),
            )
        server = Server(name, proc, log_path, base_url)
        self._servers.append(server)
        return server

    def stop(self, server: Server, timeout: float = 10.0) -> None:
        if server in self._servers:
            self._servers.remove(server)
        proc = server.proc
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{server.name} did not stop after SIGTERM; sending SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        # Anything left in the group (workers) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def pgids(self) -> list[int]:
        return [s.proc.pid for s in self._servers if s.proc.poll() is None]

    def stop_all(self) -> None:
        for server in reversed(list(self._servers)):
            try:
                self.stop(server)
            except Exception as exc:  # cleanup must go on
                log(f"could not stop {server.name}: {exc}")


def _affinity_setter(cpus: set[int] | None) -> Any:
    if not cpus:
        return None

    def set_affinity() -> None:
        os.sched_setaffinity(0, cpus)

    return set_affinity


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    log(f"stopping on {signal.Signals(signum).name}")
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only: ignore proxies


def http_request(
    url: str, body: dict[str, Any] | None = None, key: str | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_ready(server: Server, path: str, timeout: float) -> float:
    """Poll GET `path` until it answers 200; the seconds it took. Fails if the process exits."""
    started = time.monotonic()
    url = server.base_url + path
    while True:
        code = server.proc.poll()
        if code is not None:
            raise BenchError(
                f"{server.name} exited with code {code} before it was ready; "
                f"last lines of its output ({server.log_path}):\n{server.log_tail()}"
            )
        with contextlib.suppress(OSError, urllib.error.URLError):
            status, _ = http_request(url, timeout=2.0)
            if status == 200:
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise BenchError(
                f"{server.name} was not ready on {url} after {timeout:.0f} s; "
                f"last lines of its output ({server.log_path}):\n{server.log_tail()}"
            )
        time.sleep(0.25)


def chat_body() -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 16,
        "temperature": 0,
    }


def check_completion(server: Server | None, name: str, base_url: str, key: str) -> None:
    """One request through the target: it must answer 200 with a chat.completion, or the run is void."""
    url = base_url + "/v1/chat/completions"
    try:
        status, raw = http_request(url, chat_body(), key=key, timeout=30.0)
    except OSError as exc:
        raise BenchError(f"{name}: request to {url} failed: {exc}") from exc
    problem = None
    if status != 200:
        problem = f"HTTP {status}"
    else:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("object") != "chat.completion":
            problem = "the answer is not a chat.completion"
        elif not payload.get("choices") or not isinstance(payload.get("usage"), dict):
            problem = "the answer has no choices or no usage"
    if problem:
        tail = f"\nlast lines of its output:\n{server.log_tail()}" if server else ""
        raise BenchError(f"{name}: {problem}: {raw[:500].decode(errors='replace')}{tail}")


# --------------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    latency_avg_ms: float
    latency_max_ms: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([0-9.]+)(us|ms|s|m|h)"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(text: str) -> WrkResult:
    """The numbers from `wrk --latency` output."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            raise BenchError(f"could not find {pattern!r} in wrk's output:\n{text}")
        return match

    latency = find(rf"^\s*Latency\s+{_DURATION}\s+\S+\s+{_DURATION}")
    percentiles = {
        int(m.group(1)): _ms(m.group(2), m.group(3))
        for m in re.finditer(rf"^\s*(50|75|90|99)(?:\.0+)?%\s+{_DURATION}\s*$", text, re.MULTILINE)
    }
    if set(percentiles) != {50, 75, 90, 99}:
        raise BenchError(f"wrk's output has no latency distribution (run with --latency):\n{text}")
    done = find(rf"^\s*(\d+) requests in {_DURATION}")
    rps = find(r"^Requests/sec:\s+([0-9.]+)")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True)) if sockets else {}
    )
    return WrkResult(
        requests=int(done.group(1)),
        duration_s=_ms(done.group(2), done.group(3)) / 1000.0,
        rps=float(rps.group(1)),
        latency_avg_ms=_ms(latency.group(1), latency.group(2)),
        latency_max_ms=_ms(latency.group(3), latency.group(4)),
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
    )


def run_wrk(
    url: str, lua: Path, duration: float, connections: int, threads: int, cpus: set[int] | None
) -> tuple[WrkResult, str]:
    argv = [
        "wrk",
        "-c",
        str(connections),
        "-t",
        str(threads),
        "-d",
        f"{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url,
    ]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        preexec_fn=_affinity_setter(cpus),
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse_wrk(proc.stdout), proc.stdout


def write_lua(directory: Path, name: str, key: str) -> Path:
    body = json.dumps(chat_body(), separators=(",", ":"))
    path = directory / f"post-{name}.lua"
    path.write_text(WRK_LUA.format(body=body.replace("'", "\\'"), key=key), encoding="utf-8")
    return path


def _cpu_times() -> tuple[int, int] | None:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]), idle


@dataclass(frozen=True)
class CpuSnapshot:
    total_ticks: int
    idle_ticks: int
    own_s: float  # CPU seconds of the benchmark's servers and of its waited-for children (wrk)


def cpu_snapshot(pgids: Sequence[int]) -> CpuSnapshot | None:
    times = _cpu_times()
    if times is None:
        return None
    own = sum(group_cpu_seconds(pgid) or 0.0 for pgid in pgids)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(times[0], times[1], own + children.ru_utime + children.ru_stime)


def other_load_pct(before: CpuSnapshot | None, after: CpuSnapshot | None) -> float | None:
    """The share of all CPUs that processes other than the benchmark's used between two snapshots.

    wrk, the upstream and the gateway need the cores to themselves; other work (a test suite, a build)
    skews the numbers.
    """
    if before is None or after is None or after.total_ticks <= before.total_ticks:
        return None
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    total_s = (after.total_ticks - before.total_ticks) / ticks_per_s
    busy_s = total_s - (after.idle_ticks - before.idle_ticks) / ticks_per_s
    other_s = max(0.0, busy_s - (after.own_s - before.own_s))
    return round(100.0 * other_s / total_s, 1)


def wait_until_quiet(pgids: Sequence[int], max_wait: float, threshold: float) -> float | None:
    """Sample the other processes' load, waiting up to `max_wait` seconds for it to drop under `threshold`%."""
    deadline = time.monotonic() + max_wait

    def sample() -> float | None:
        before = cpu_snapshot(pgids)
        time.sleep(1.0)
        return other_load_pct(before, cpu_snapshot(pgids))

    busy = sample()
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        log(f"other processes keep the CPUs {busy:.0f}% busy; waiting for them to calm down")
        time.sleep(2.0)
        busy = sample()
    if busy is not None and busy > threshold:
        log(f"warning: other processes keep the CPUs {busy:.0f}% busy; the numbers will be skewed")
    return busy


def group_cpu_seconds(pgid: int) -> float | None:
    """User + system CPU seconds of every live process in the group (Linux /proc); None elsewhere."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    found = False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # fields[0] is field 3 (state); pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) != pgid:
            continue
        found = True
        total += int(fields[11]) + int(fields[12])
    return total / ticks if found else None


# --------------------------------------------------------------------------------------------------
# Targets


@dataclass
class TargetResult:
    target: str
    url: str
    rps: float
    p50_ms: float
    p99_ms: float
    added_p50_ms: float | None
    errors: int
    cpu_ms_per_request: float | None
    startup_s: float | None
    wrk: WrkResult
    log_errors: int = 0
    log_error_sample: str | None = None
    other_load_before_pct: float | None = None
    other_load_during_pct: float | None = None


def measure(
    name: str,
    url: str,
    lua: Path,
    args: argparse.Namespace,
    server: Server | None,
    startup_s: float | None,
    wrk_cpus: set[int] | None,
    procs: Processes,
) -> tuple[TargetResult, str]:
    """Warm up and measure one target; again (up to --retries) while other work skews the run.

    Of several attempts, the one with the least other load counts; every attempt's numbers are logged.
    """
    best: tuple[TargetResult, str] | None = None
    for attempt in range(args.retries + 1):
        if attempt:
            log(f"{name}: measuring again ({attempt}/{args.retries}), other work skewed the last run")
        outcome = _measure_once(name, url, lua, args, server, startup_s, wrk_cpus, procs)
        busy = outcome[0].other_load_during_pct
        if best is None or (busy or 0.0) < (best[0].other_load_during_pct or 0.0):
            best = outcome
        if busy is None or busy <= BUSY_THRESHOLD_PCT:
            break
    assert best is not None
    return best


def _measure_once(
    name: str,
    url: str,
    lua: Path,
    args: argparse.Namespace,
    server: Server | None,
    startup_s: float | None,
    wrk_cpus: set[int] | None,
    procs: Processes,
) -> tuple[TargetResult, str]:
    busy_before = wait_until_quiet(procs.pgids(), args.wait_quiet, BUSY_THRESHOLD_PCT)
    log(f"{name}: warm-up {args.warmup:g} s")
    warm, _ = run_wrk(url, lua, args.warmup, args.connections, args.threads, wrk_cpus)
    if warm.errors:
        log(f"{name}: warm-up had {warm.errors} errors ({warm.non_2xx} non-2xx, {warm.socket_errors})")
    if server is not None and server.proc.poll() is not None:
        raise BenchError(f"{name} died during the warm-up; last lines of its output:\n{server.log_tail()}")
    log(f"{name}: measuring {args.duration:g} s at {args.connections} connections")
    machine_before = cpu_snapshot(procs.pgids())
    cpu_before = group_cpu_seconds(server.proc.pid) if server else None
    result, raw = run_wrk(url, lua, args.duration, args.connections, args.threads, wrk_cpus)
    cpu_after = group_cpu_seconds(server.proc.pid) if server else None
    busy_during = other_load_pct(machine_before, cpu_snapshot(procs.pgids()))
    if busy_during is not None and busy_during > BUSY_THRESHOLD_PCT:
        log(f"warning: other processes used {busy_during:.0f}% of the CPUs during the {name} run")
    if server is not None and server.proc.poll() is not None:
        raise BenchError(f"{name} died during the run; last lines of its output:\n{server.log_tail()}")
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and result.requests:
        cpu_ms = (cpu_after - cpu_before) * 1000.0 / result.requests
    log(f"{name}: {result.rps:.1f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms")
    if result.errors:
        log(f"{name}: {result.errors} errors ({result.non_2xx} non-2xx, sockets {result.socket_errors})")
    log_errors, log_sample = server.log_errors() if server else (0, None)
    if log_errors:
        log(f"{name}: its log has {log_errors} error lines, the first: {log_sample}")
    return (
        TargetResult(
            target=name,
            url=url,
            rps=result.rps,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            added_p50_ms=None,
            errors=result.errors,
            cpu_ms_per_request=cpu_ms,
            startup_s=startup_s,
            wrk=result,
            log_errors=log_errors,
            log_error_sample=log_sample,
            other_load_before_pct=busy_before,
            other_load_during_pct=busy_during,
        ),
        raw,
    )


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_under_load(
    name: str, server: Server, url: str, lua: Path, args: argparse.Namespace, wrk_cpus: set[int] | None
) -> dict[str, Any]:
    """Sample the server with py-spy during an extra wrk run (not counted); a summary of the hot spots."""
    py_spy = find_py_spy()
    if py_spy is None:
        log("py-spy not found (pip install py-spy); no profile")
        return {"error": "py-spy not installed"}
    out_dir = Path(args.profile_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw_path = out_dir / f"{name}-{stamp}.folded.txt"
    log(f"{name}: profiling {args.profile:g} s under load with py-spy -> {raw_path}")
    seconds = max(1, round(args.profile))
    wrk = subprocess.Popen(
        ["wrk", "-c", str(args.connections), "-t", str(args.threads), "-d", f"{seconds + 3}s", "-s", str(lua), url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_affinity_setter(wrk_cpus),
    )
    try:
        time.sleep(1.0)
        # --gil: only samples where a thread holds the GIL, i.e. Python work, not threads waiting.
        spy_pid = ["--gil", "--subprocesses", "--pid", str(server.proc.pid)]
        spy = subprocess.run(
            [py_spy, "record", "-d", str(seconds), "-r", "200", "-f", "raw", "-o", str(raw_path), *spy_pid],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        wrk.wait(timeout=seconds + 30)
    if spy.returncode != 0 or not raw_path.exists():
        log(f"py-spy failed: {spy.stderr.strip()[-500:]}")
        return {"error": spy.stderr.strip()[-500:]}
    summary = summarize_profile(raw_path)
    summary["file"] = str(raw_path)
    return summary


_ROOT_FRAMES = {"Runner.run", "Thread.run", "_worker", "BaseEventLoop._run_once", "Handle._run"}
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Where the samples of a py-spy raw (folded) profile went: by line, by function, by package.

    `self` ranks the innermost frames (with line numbers), `inclusive` the functions on the stack below
    the event loop or thread entry point (the frames every sample shares say nothing) and `packages` the
    innermost frame's top-level package (`pilothouse`, `aiohttp`, `sqlalchemy`, the stdlib module...).
    """
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    packages: dict[str, int] = {}
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [m for m in (_FRAME.match(f.strip()) for f in stack.split(";")) if m]
        if not frames:
            continue
        n = int(count)
        total += n
        leaf = frames[-1]
        own[leaf.group(0)] = own.get(leaf.group(0), 0) + n
        package = leaf.group("path").split("/", 1)[0].removesuffix(".py")
        packages[package] = packages.get(package, 0) + n
        roots = [i for i, m in enumerate(frames) if m.group("func") in _ROOT_FRAMES]
        below = frames[roots[-1] + 1 :] if roots else frames
        for name in {f"{m.group('func')} ({m.group('path')})" for m in below}:
            inclusive[name] = inclusive.get(name, 0) + n

    def ranked(counts: dict[str, int], limit: int = top) -> list[dict[str, Any]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])
        return [{"function": k, "share": round(v / total, 4)} for k, v in best[:limit]]

    return {
        "samples": total,
        "self": ranked(own),
        "inclusive": ranked(inclusive),
        "packages": ranked(packages, 10),
    }


def pinned_version(requirements: Path) -> str | None:
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*litellm(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
        if match:
            return match.group(1)
    return None


def installed_version(python: Path, package: str) -> str | None:
    if not python.exists():
        return None
    proc = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_litellm(venv: Path, requirements: Path) -> str:
    """The LiteLLM version in `venv`, installing it from `requirements` when missing or not the pin."""
    python = venv / "bin" / "python"
    wanted = pinned_version(requirements)
    have = installed_version(python, "litellm")
    if have is not None and (wanted is None or have == wanted) and (venv / "bin" / "litellm").exists():
        return have
    if not python.exists():
        log(f"creating {venv} for LiteLLM (kept apart from the project's venv)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing {requirements.name} into {venv} (first use only; takes a minute)")
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ],
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"pip could not install {requirements}; use --skip-litellm to bench without it")
    have = installed_version(python, "litellm")
    if have is None:
        raise BenchError(f"litellm is not importable in {venv} after the install")
    return have


def start_litellm(
    procs: Processes, args: argparse.Namespace, work: Path, upstream_port: int, cpus: set[int] | None
) -> tuple[Server, float]:
    venv = Path(args.litellm_venv)
    config = (BENCH_DIR / "litellm_config.yaml").read_text(encoding="utf-8")
    config = config.replace("UPSTREAM_PORT", str(upstream_port)).replace("MASTER_KEY", LITELLM_MASTER_KEY)
    config_path = work / "litellm_config.yaml"
    config_path.write_text(config, encoding="utf-8")
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price list at start
            "LITELLM_LOG": "ERROR",  # LiteLLM's own production advice; less logging, more speed
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    env.pop("DATABASE_URL", None)  # "no database"
    litellm_dir = work / "litellm"
    litellm_dir.mkdir()
    server = procs.start(
        "litellm",
        [
            str(venv / "bin" / "litellm"),
            "--config",
            str(config_path),
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        f"http://127.0.0.1:{port}",
        work / "litellm.log",
        env=env,
        cwd=litellm_dir,
        cpus=cpus,
    )
    startup = wait_ready(server, "/health/liveliness", args.start_timeout)
    log(f"litellm ready after {startup:.1f} s")
    return server, startup


def start_pilothouse(
    procs: Processes, args: argparse.Namespace, work: Path, upstream_port: int, cpus: set[int] | None
) -> tuple[Server, float]:
    binary = Path(args.pilothouse_bin)
    if not binary.exists():
        raise BenchError(f"{binary} does not exist; install the project (pip install -e .) or --skip-pilothouse")
    template = (BENCH_DIR / "pilothouse.bench.toml").read_text(encoding="utf-8")
    config_path = work / "pilothouse.bench.toml"
    config_path.write_text(template.replace("UPSTREAM_PORT", str(upstream_port)), encoding="utf-8")
    data_dir = work / "pilothouse-data"
    data_dir.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    env.update(
        {
            "PILOTHOUSE_ADMIN_KEY": PILOTHOUSE_ADMIN_KEY,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    server = procs.start(
        "pilothouse",
        [
            str(binary),
            "up",
            "--config",
            str(config_path),
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *args.pilothouse_arg,
        ],
        f"http://127.0.0.1:{port}",
        work / "pilothouse.log",
        env=env,
        cwd=work,
        cpus=cpus,
    )
    startup = wait_ready(server, "/readyz", args.start_timeout)
    log(f"pilothouse ready after {startup:.1f} s")
    return server, startup


def pilothouse_key(work: Path) -> str:
    """The admin key the server saved (it is PILOTHOUSE_ADMIN_KEY, unless the server ignored that)."""
    saved = work / "pilothouse-data" / "admin_key"
    with contextlib.suppress(OSError):
        secret = saved.read_text(encoding="utf-8").strip()
        if secret:
            if secret != PILOTHOUSE_ADMIN_KEY:
                log("pilothouse saved another admin key than PILOTHOUSE_ADMIN_KEY; using the saved one")
            return secret
    return PILOTHOUSE_ADMIN_KEY


# --------------------------------------------------------------------------------------------------
# Report


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    wrk_version = ""
    with contextlib.suppress(OSError):
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        first = (out.stdout or out.stderr).splitlines()[0].strip()
        match = re.match(r"wrk\s+(\S+)", first)
        wrk_version = match.group(1) if match else first
    git = ""
    with contextlib.suppress(OSError):
        out = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        git = out.stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "kernel": platform.release(),
        "loadavg_at_start": _loadavg(),
        "python": platform.python_version(),
        "wrk": wrk_version,
        "pilothouse_git": git or "no commit",
        "pilothouse_src_sha256": _source_digest(REPO_DIR / "src" / "pilothouse"),
    }


def _source_digest(root: Path) -> str | None:
    """A short digest of the package's Python sources, to tell apart runs of an uncommitted tree."""
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def evaluate(results: dict[str, TargetResult]) -> list[dict[str, Any]]:
    direct = results.get("direct")
    litellm = results.get("litellm")
    pilot = results.get("pilothouse")
    checks: list[dict[str, Any]] = []
    pilot_errors = bool(pilot and pilot.errors)

    def check(name: str, value: float | None, op: str, threshold: float, note: str = "") -> None:
        if value is None:
            met: bool | None = None
        elif pilot_errors:
            met = False
            note = note or "Pilothouse had errors during the run"
        else:
            met = value >= threshold if op == ">=" else value <= threshold
        checks.append({"check": name, "value": value, "op": op, "threshold": threshold, "met": met, "note": note})

    if pilot and direct:
        check("pilothouse_rps / direct_rps", pilot.rps / direct.rps if direct.rps else None, ">=", MIN_RPS_VS_DIRECT)
    if pilot and litellm:
        ratio = pilot.rps / litellm.rps if litellm.rps else None
        check("pilothouse_rps / litellm_rps", ratio, ">=", MIN_RPS_VS_LITELLM)
        if pilot.added_p50_ms is not None and litellm.added_p50_ms is not None and litellm.added_p50_ms > 0:
            check(
                "pilothouse_added_p50 / litellm_added_p50",
                pilot.added_p50_ms / litellm.added_p50_ms,
                "<=",
                MAX_ADDED_P50_VS_LITELLM,
            )
        else:
            check(
                "pilothouse_added_p50 / litellm_added_p50",
                None,
                "<=",
                MAX_ADDED_P50_VS_LITELLM,
                "LiteLLM added no median latency; the ratio is undefined",
            )
    return checks


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(
    results: dict[str, TargetResult], checks: list[dict[str, Any]], meta: dict[str, Any], out: TextIO
) -> None:
    machine = meta["machine"]
    print(file=out)
    print(
        f"Gateway overhead: {meta['connections']} connections, {meta['threads']} wrk threads, "
        f"{meta['duration_s']:g} s runs after {meta['warmup_s']:g} s warm-ups, upstream delay "
        f"{meta['delay_ms']:g} ms, pinning: {meta['pinning']}",
        file=out,
    )
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores; {meta['date']}", file=out)
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    print(f"Versions: {versions}", file=out)
    print(file=out)
    header = f"{'target':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'added p50 ms':>14}{'errors':>8}"
    header += f"{'CPU ms/req':>12}{'other load %':>14}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in results.values():
        print(
            f"{r.target:<12}{r.rps:>10.1f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}"
            f"{_fmt(r.added_p50_ms):>14}{r.errors:>8}{_fmt(r.cpu_ms_per_request, 3):>12}"
            f"{_fmt(r.other_load_during_pct, 0):>14}",
            file=out,
        )
    for r in results.values():
        if r.log_errors:
            print(f"warning: {r.target} logged {r.log_errors} error lines; the first: {r.log_error_sample}", file=out)
        if r.errors:
            print(f"warning: {r.target} had {r.errors} failed requests during the measured run", file=out)
        busy = r.other_load_during_pct
        if busy is not None and busy > BUSY_THRESHOLD_PCT:
            print(f"warning: other processes used {busy:.0f}% of the CPUs during the {r.target} run", file=out)
    print(file=out)
    if not checks:
        print("No Pilothouse targets to check (Pilothouse or the direct run was skipped).", file=out)
    for c in checks:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[c["met"]]
        note = f"  ({c['note']})" if c["note"] else ""
        print(
            f"{c['check']:<42} = {_fmt(c['value']):>7}  target {c['op']} {c['threshold']:<5g} {status}{note}",
            file=out,
        )
    print(file=out)


def print_profiles(profiles: dict[str, dict[str, Any]], out: TextIO, top: int = 12) -> None:
    for name, prof in profiles.items():
        if "error" in prof:
            print(f"{name} profile: {prof['error']}", file=out)
            continue
        print(f"{name} profile: {prof['samples']} samples holding the GIL, {prof['file']}", file=out)
        print("  innermost frame:", file=out)
        for row in prof["self"][:top]:
            print(f"    {row['share'] * 100:5.1f}%  {row['function']}", file=out)
        print("  inclusive (below the event loop / thread entry):", file=out)
        for row in prof["inclusive"][:top]:
            print(f"    {row['share'] * 100:5.1f}%  {row['function']}", file=out)
        packages = ", ".join(f"{row['function']} {row['share'] * 100:.0f}%" for row in prof["packages"])
        print(f"  by package: {packages}", file=out)
        print(file=out)


# --------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure the overhead of Pilothouse and of the LiteLLM proxy in front of a fast fake "
            "OpenAI-compatible upstream, with wrk, on loopback. Targets: Pilothouse req/s >= 0.5 x direct, "
            ">= 5 x LiteLLM, and added median latency <= 0.25 x LiteLLM's."
        ),
        epilog="Needs wrk (apt-get install -y wrk). See bench/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of the warm-up run before each")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (-c)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="upstream delay before each reply")
    parser.add_argument("--skip-litellm", action="store_true", help="do not install or measure LiteLLM")
    parser.add_argument("--skip-pilothouse", action="store_true", help="do not measure Pilothouse")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout (no table)")
    parser.add_argument("--json-out", metavar="PATH", help="also write the JSON results to this file")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the gateway to the last CPU and wrk + upstream to the others (needs >= 2 CPUs); "
        "by default all share every CPU",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when Pilothouse misses a target (otherwise exit 0 once measured)",
    )
    parser.add_argument(
        "--pilothouse-bin", default=str(REPO_DIR / ".venv" / "bin" / "pilothouse"), help="the pilothouse CLI"
    )
    parser.add_argument(
        "--pilothouse-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `pilothouse up` (repeatable)",
    )
    parser.add_argument(
        "--litellm-venv", default=str(BENCH_DIR / ".venv-litellm"), help="virtual environment for LiteLLM"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=180.0, help="seconds to wait for a server to become ready"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help=f"before each target, wait up to this long for other processes to use under "
        f"{BUSY_THRESHOLD_PCT:g}%% of the CPUs (then go on with a warning)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help=f"measure a target again (warm-up included) when other processes used over "
        f"{BUSY_THRESHOLD_PCT:g}%% of the CPUs during its run; the least disturbed attempt counts",
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after each gateway's measured run, sample it with py-spy for this long during an extra, "
        "uncounted wrk run and print its hot spots (0: off)",
    )
    parser.add_argument("--profile-dir", default=str(BENCH_DIR / "results"), help="where py-spy's folded profiles go")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory with logs")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 1:
        parser.error("--duration and --warmup must be at least 1 second")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return args


def run(args: argparse.Namespace, procs: Processes, work: Path) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed; install it with: sudo apt-get install -y wrk  (or brew install wrk)")
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    gateway_cpus: set[int] | None = None
    load_cpus: set[int] | None = None
    pinning = f"none (wrk, upstream and gateway share {len(cpus) or os.cpu_count()} CPUs)"
    if args.pin:
        if len(cpus) < 2:
            raise BenchError("--pin needs at least 2 CPUs")
        gateway_cpus, load_cpus = {cpus[-1]}, set(cpus[:-1])
        pinning = f"gateway on CPU {cpus[-1]}, wrk + upstream on CPU {','.join(map(str, cpus[:-1]))}"

    machine = machine_info()
    versions: dict[str, str | None] = {"wrk": machine.pop("wrk"), "litellm": None, "pilothouse": None}
    if not args.skip_litellm:
        versions["litellm"] = ensure_litellm(Path(args.litellm_venv), BENCH_DIR / "requirements-litellm.txt")
    if not args.skip_pilothouse:
        versions["pilothouse"] = installed_version(Path(args.pilothouse_bin).parent / "python", "pilothouse")

    upstream_port = free_port()
    upstream = procs.start(
        "upstream",
        [
            sys.executable,
            str(BENCH_DIR / "upstream.py"),
            "--port",
            str(upstream_port),
            "--delay-ms",
            str(args.delay_ms),
        ],
        f"http://127.0.0.1:{upstream_port}",
        work / "upstream.log",
        cwd=work,
        cpus=load_cpus,
    )
    wait_ready(upstream, "/health", 30.0)
    check_completion(upstream, "direct", upstream.base_url, "x")

    results: dict[str, TargetResult] = {}
    raw_outputs: dict[str, str] = {}
    url_path = "/v1/chat/completions"

    lua = write_lua(work, "direct", "x")
    # For the direct run the CPU column is the upstream's own CPU per request.
    results["direct"], raw_outputs["direct"] = measure(
        "direct", upstream.base_url + url_path, lua, args, upstream, None, load_cpus, procs
    )

    profiles: dict[str, dict[str, Any]] = {}

    def bench_gateway(name: str, server: Server, startup: float, key: str) -> None:
        check_completion(server, name, server.base_url, key)
        lua = write_lua(work, name, key)
        url = server.base_url + url_path
        results[name], raw_outputs[name] = measure(name, url, lua, args, server, startup, load_cpus, procs)
        if args.profile > 0:
            profiles[name] = profile_under_load(name, server, url, lua, args, load_cpus)
        procs.stop(server)

    if not args.skip_litellm:
        server, startup = start_litellm(procs, args, work, upstream_port, gateway_cpus)
        bench_gateway("litellm", server, startup, LITELLM_MASTER_KEY)

    if not args.skip_pilothouse:
        server, startup = start_pilothouse(procs, args, work, upstream_port, gateway_cpus)
        bench_gateway("pilothouse", server, startup, pilothouse_key(work))

    procs.stop(upstream)

    direct = results["direct"]
    for name, r in results.items():
        if name != "direct":
            r.added_p50_ms = r.p50_ms - direct.p50_ms
    checks = evaluate(results)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "versions": versions,
        "pinning": pinning,
        "connections": args.connections,
        "threads": args.threads,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "delay_ms": args.delay_ms,
        "results": {k: _result_json(v) for k, v in results.items()},
        "checks": checks,
        "all_met": all(c["met"] for c in checks) if checks else None,
        "profiles": profiles,
        "wrk_output": raw_outputs,
        "_results": results,
    }


def _result_json(r: TargetResult) -> dict[str, Any]:
    data = asdict(r)
    data["wrk"]["errors"] = r.wrk.errors
    return data


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    """A temporary directory for configs, logs and data; kept with --keep-logs or when the run fails."""
    path = Path(tempfile.mkdtemp(prefix="pilothouse-bench-"))
    try:
        yield path
    except BaseException:
        log(f"logs and configs kept in {path}")
        raise
    if keep:
        log(f"logs and configs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C raises KeyboardInterrupt even where the shell started us with SIGINT ignored (`cmd &`);
    # SIGTERM and SIGHUP unwind the same way, so every server is stopped on the way out.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGHUP, _raise_system_exit)
    procs = Processes()
    started = time.monotonic()
    try:
        with _workdir(args.keep_logs) as work:
            try:
                report = run(args, procs, work)
            finally:
                procs.stop_all()
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    results: dict[str, TargetResult] = report.pop("_results")
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_report(results, report["checks"], report, sys.stdout)
        print_profiles(report["profiles"], sys.stdout)
        print(f"Command: {report['command']}\nBenchmark took {report['elapsed_s']:.0f} s.")
    log(f"done in {report['elapsed_s']:.0f} s")
    if args.strict and report["all_met"] is False:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
