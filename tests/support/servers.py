"""Starting real servers for tests: `pilothouse up` as a subprocess, on a free port, with its own data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    admin_key: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


PORT_ATTEMPTS = 3


class PortTakenError(RuntimeError):
    """`pilothouse up` exited because the free port chosen for it was taken before it could bind it."""


def start_server(
    data_dir: Path,
    *,
    config: Path | None = None,
    database_url: str | None = None,
    admin_key: str = "ph-test-admin-key-0123456789",
    extra_env: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> RunningServer:
    """Start `pilothouse up` and wait until /readyz says ready; fail with the server's log otherwise.

    The free port is chosen before the server binds it, so another process (another xdist worker starting its
    own server) can take it in between: a start that failed only because its port was taken is tried again on
    a new port."""
    for attempt in range(PORT_ATTEMPTS):
        try:
            return _start_once(data_dir, config, database_url, admin_key, extra_env, timeout)
        except PortTakenError:
            if attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _start_once(
    data_dir: Path,
    config: Path | None,
    database_url: str | None,
    admin_key: str,
    extra_env: dict[str, str] | None,
    timeout: float,
) -> RunningServer:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    env = {**os.environ, "PILOTHOUSE_ADMIN_KEY": admin_key, **(extra_env or {})}
    env.pop("PILOTHOUSE_CONFIG", None)
    cmd = [sys.executable, "-m", "pilothouse", "up", "--port", str(port), "--data-dir", str(data_dir)]
    if config is not None:
        cmd += ["--config", str(config)]
    if database_url is not None:
        cmd += ["--database-url", database_url]
    log = log_path.open("wb")
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data_dir)
    server = RunningServer(f"http://127.0.0.1:{port}", admin_key, data_dir, process, log_path, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = server.log()
            if f"port {port} is already in use" in text:
                raise PortTakenError(text)
            raise RuntimeError(f"pilothouse up exited with {process.returncode}:\n{text}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"pilothouse up was not ready within {timeout}s:\n{server.log()}")
