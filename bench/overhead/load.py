"""CPU time on Linux: a process group's own, and the share of the machine that other processes take.

wrk, the upstream and the gateway need the cores to themselves; other work (a test suite, a build) skews
the numbers, so the benchmark measures it and waits for quiet windows.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import log


def _ticks_per_s() -> int:
    return os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_seconds(pgid: int) -> float | None:
    """User + system CPU seconds of every live process in the group (Linux /proc); None elsewhere."""
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
    return total / _ticks_per_s() if found else None


def _cpu_times() -> tuple[int, int] | None:
    """All CPUs' ticks since boot and the idle ones among them, from /proc/stat."""
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
    """The share of all CPUs that processes other than the benchmark's used between two snapshots."""
    if before is None or after is None or after.total_ticks <= before.total_ticks:
        return None
    ticks_per_s = _ticks_per_s()
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
