"""`pilothouse up` binds its port before anything else starts, so a port already taken is one clear line (naming
the process that holds it, when this user may see it) instead of a start-up banner followed by a failure; and
"listening" is printed only once the socket really listens.

Finding the holder is best effort: on Linux the listening socket's inode from /proc/net/tcp{,6} is matched against
/proc/PID/fd (readable for this user's processes), then `ss -ltnp` is asked; elsewhere nothing is named.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

BACKLOG = 2048  # uvicorn's default
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp
_SS_USER = re.compile(r'\("(?P<name>[^"]*)",pid=(?P<pid>\d+)')


class ListenError(Exception):
    """The port cannot be bound; the message is one line saying why and what to do."""


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) and listening, as uvicorn would bind it (SO_REUSEADDR: a port left in
    TIME_WAIT by a previous run is reusable; one another process listens on is not)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(_why(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def _why(host: str, port: int, exc: OSError) -> str:
    where = f"{url_host(host)}:{port}"
    if exc.errno == errno.EADDRINUSE:
        holder = find_holder(port)
        by = f"by {holder}" if holder else "by another process"
        if holder and "pilothouse" in holder.command:
            by += ", another Pilothouse server"
        return (
            f"port {port} is already in use on {host} ({by}); stop it, or choose another port with --port or "
            "PILOTHOUSE_PORT"
        )
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need privileges); choose --port"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {exc.strerror or exc}; check --host (an address of this machine)"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def find_holder(port: int) -> Holder | None:
    """The process listening on TCP `port`, if this user can tell."""
    inodes = _listening_inodes(port)
    if inodes:
        holder = _holder_from_proc(inodes)
        if holder is not None:
            return holder
    return _holder_from_ss(port)


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            try:
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
            except (IndexError, ValueError):
                continue
            if local_port == port and fields[9] != "0":
                inodes.add(fields[9])
    return inodes


def _holder_from_proc(inodes: set[str]) -> Holder | None:
    targets = {f"socket:[{inode}]" for inode in inodes}
    try:
        pids = [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # another user's process, or gone
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    return Holder(int(pid), _command(int(pid)))
            except OSError:
                continue
    return None


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text if len(text) <= 100 else text[:99] + "…"


def _holder_from_ss(port: int) -> Holder | None:
    ss = shutil.which("ss")
    if ss is None:
        return None
    try:
        out = subprocess.run(
            [ss, "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=2, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _SS_USER.search(out)
    if match is None:
        return None
    pid = int(match["pid"])
    return Holder(pid, _command(pid) or match["name"])
