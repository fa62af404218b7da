"""py-spy: sampling a gateway during an extra, uncounted wrk run, and where its samples went."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .common import log
from .processes import Server, affinity_setter
from .wrk import wrk_command

_ROOT_FRAMES = {"Runner.run", "Thread.run", "_worker", "BaseEventLoop._run_once", "Handle._run"}
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")


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
        wrk_command(url, lua, seconds + 3, args.connections, args.threads),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=affinity_setter(wrk_cpus),
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
