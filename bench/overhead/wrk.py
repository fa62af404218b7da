"""wrk: its Lua script, its command line, running it and parsing its `--latency` output."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .common import BenchError, chat_body
from .processes import affinity_setter

WRK_LUA = """\
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([0-9.]+)(us|ms|s|m|h)"


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
    def timeouts(self) -> int:
        return self.socket_errors.get("timeout", 0)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed; install it with: sudo apt-get install -y wrk  (or brew install wrk)")


def wrk_version() -> str:
    """wrk's version ("4.1.0"), its first output line when that does not parse, "" when it does not run."""
    version = ""
    with contextlib.suppress(OSError):
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        first = (out.stdout or out.stderr).splitlines()[0].strip()
        match = re.match(r"wrk\s+(\S+)", first)
        version = match.group(1) if match else first
    return version


def write_lua(directory: Path, name: str, key: str) -> Path:
    """The script that makes wrk POST `chat_body()` with `key`."""
    body = json.dumps(chat_body(), separators=(",", ":"))
    path = directory / f"post-{name}.lua"
    path.write_text(WRK_LUA.format(body=body.replace("'", "\\'"), key=key), encoding="utf-8")
    return path


def wrk_command(url: str, lua: Path, seconds: int, connections: int, threads: int, *options: str) -> list[str]:
    return ["wrk", "-c", str(connections), "-t", str(threads), "-d", f"{seconds}s", *options, "-s", str(lua), url]


def run_wrk(
    url: str,
    lua: Path,
    duration: float,
    connections: int,
    threads: int,
    cpus: set[int] | None,
    timeout_s: float = 10.0,
) -> tuple[WrkResult, str]:
    """One wrk run with the latency distribution; its numbers and its raw output. A request unanswered after
    `timeout_s` (whole seconds: wrk takes no finer unit) counts as a socket timeout error."""
    timeout = f"{max(1, round(timeout_s))}s"
    argv = wrk_command(url, lua, max(1, round(duration)), connections, threads, "--latency", "--timeout", timeout)
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        preexec_fn=affinity_setter(cpus),
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse_wrk(proc.stdout), proc.stdout


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
