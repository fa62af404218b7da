"""A bounded memory soak: wrk sends new requests (each one a cache miss that is stored) for a fixed time
while the gateway's resident memory is sampled; the growth after the warm-up is the result.

RSS is the sum of VmRSS (/proc/<pid>/status, Linux) over the server's process group: one process for
`pilothouse up` and for `litellm --num_workers 1`, but a group also covers a server that forks workers.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .common import BenchError, log
from .load import cpu_snapshot, other_load_pct
from .processes import Server, affinity_setter
from .wrk import WrkResult, parse_wrk, wrk_command

# The baseline is the first sample taken after this share of the soak: by then the process has warmed up
# (imports done, pools and caches at their working size).
WARMUP_SHARE = 0.2


def group_rss_kib(pgid: int) -> int | None:
    """Resident memory (KiB) of every live process in the group; None when none is found or not on Linux."""
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
            if int(stat[stat.rfind(")") + 2 :].split()[2]) != pgid:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
                found = True
                break
    return total if found else None


@dataclass
class SoakResult:
    target: str
    seconds: float
    connections: int
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since the start, RSS KiB)
    baseline_kib: int | None = None  # the first sample at or after WARMUP_SHARE of the soak
    baseline_at_s: float | None = None
    end_kib: int | None = None
    peak_kib: int | None = None
    growth_pct: float | None = None  # end over baseline
    wrk: WrkResult | None = None
    upstream_calls: int | None = None
    log_errors: int = 0
    log_error_sample: str | None = None
    other_load_pct: float | None = None  # share of the CPUs other processes used during the soak

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.wrk is not None:
            data["wrk"]["errors"] = self.wrk.errors
        return data

    def summarize(self) -> None:
        if not self.samples:
            return
        after = [s for s in self.samples if s[0] >= WARMUP_SHARE * self.seconds] or self.samples[-1:]
        self.baseline_at_s, self.baseline_kib = after[0]
        self.end_kib = self.samples[-1][1]
        self.peak_kib = max(kib for _, kib in after)
        if self.baseline_kib:
            self.growth_pct = round(100.0 * (self.end_kib - self.baseline_kib) / self.baseline_kib, 2)


def soak(
    name: str,
    server: Server,
    url: str,
    lua: Path,
    seconds: float,
    connections: int,
    threads: int,
    interval: float,
    wrk_cpus: set[int] | None,
    pgids: Sequence[int],
) -> SoakResult:
    """Run wrk for `seconds` with the script `lua`, sampling the server's RSS every `interval` seconds.

    `pgids` are the benchmark's own process groups, for the share of the CPUs that other work took.
    """
    result = SoakResult(target=name, seconds=seconds, connections=connections)
    argv = wrk_command(url, lua, max(1, round(seconds)), connections, threads, "--latency", "--timeout", "10s")
    log(f"{name}: memory soak, {seconds:g} s at {connections} connections, RSS every {interval:g} s")
    machine_before = cpu_snapshot(pgids)
    started = time.monotonic()
    wrk = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=affinity_setter(wrk_cpus)
    )
    try:
        next_sample = started
        while wrk.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                kib = group_rss_kib(server.proc.pid)
                if kib is not None:
                    result.samples.append((round(now - started, 1), kib))
                next_sample += interval
            time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
        out, err = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    # One more sample once the load has stopped: what the process holds at the end of the soak.
    kib = group_rss_kib(server.proc.pid)
    if kib is not None:
        result.samples.append((round(time.monotonic() - started, 1), kib))
    result.other_load_pct = other_load_pct(machine_before, cpu_snapshot(pgids))
    if wrk.returncode != 0:
        raise BenchError(f"wrk failed during the {name} soak ({wrk.returncode}): {err or out}")
    server.ensure_alive(name, "the memory soak")
    result.wrk = parse_wrk(out)
    result.summarize()
    result.log_errors, result.log_error_sample = server.log_errors()
    if result.baseline_kib is not None and result.end_kib is not None:
        log(
            f"{name}: RSS {result.baseline_kib / 1024:.1f} MiB at {result.baseline_at_s:g} s, "
            f"{result.end_kib / 1024:.1f} MiB at the end ({result.growth_pct:+.1f}%), "
            f"{result.wrk.rps:.1f} req/s, {result.wrk.errors} errors"
        )
    return result
