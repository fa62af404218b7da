"""The benchmark's servers as subprocesses: each in its own session, so its whole process group can be ended."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import BenchError, log

_LOG_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b|^Traceback")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    base_url: str
    log_mark: int = 0  # log_errors() counts the lines after this one

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def _read_log(self) -> str | None:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def log_tail(self, lines: int = 40) -> str:
        text = self._read_log()
        if text is None:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"

    def last_output(self) -> str:
        """The tail of the server's output, for an error message."""
        return f"last lines of its output ({self.log_path}):\n{self.log_tail()}"

    def log_errors(self) -> tuple[int, str | None]:
        """How many error lines (ERROR, CRITICAL, Traceback) the server logged after the mark, and the first."""
        text = self._read_log()
        if text is None:
            return 0, None
        hits = [line for line in text.splitlines()[self.log_mark :] if _LOG_ERROR.search(line)]
        return len(hits), (hits[0][:300] if hits else None)

    def mark_log(self) -> None:
        """From now on log_errors() counts only new lines (say, after calls that were meant to fail)."""
        text = self._read_log()
        self.log_mark = len(text.splitlines()) if text is not None else 0

    def ensure_alive(self, target: str, stage: str) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{target} died during {stage}; {self.last_output()}")


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
                preexec_fn=affinity_setter(cpus),
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


def affinity_setter(cpus: set[int] | None) -> Callable[[], None] | None:
    """A `preexec_fn` that pins the child to `cpus`; None when there is nothing to pin."""
    if not cpus:
        return None

    def set_affinity() -> None:
        os.sched_setaffinity(0, cpus)

    return set_affinity


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the gateway and the load side (wrk + upstream) may use; None: all of them."""

    gateway: set[int] | None
    load: set[int] | None
    description: str


def plan_cpus(pin: bool) -> CpuPlan:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not pin:
        return CpuPlan(None, None, f"none (wrk, upstream and gateway share {len(cpus) or os.cpu_count()} CPUs)")
    if len(cpus) < 2:
        raise BenchError("--pin needs at least 2 CPUs")
    return CpuPlan(
        {cpus[-1]},
        set(cpus[:-1]),
        f"gateway on CPU {cpus[-1]}, wrk + upstream on CPU {','.join(map(str, cpus[:-1]))}",
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
