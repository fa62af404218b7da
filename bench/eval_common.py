"""What the evaluation benchmarks share: a `pilothouse up` subprocess on a free port with its own data folder and
configuration, ended with its whole process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ADMIN_KEY = "ph-bench-admin-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pilothouse:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    key: str = ADMIN_KEY

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_pilothouse(data_dir: Path, config: str, *, timeout_s: float = 180.0) -> Pilothouse:
    """`pilothouse up` with `config` (TOML text) until /readyz answers; RuntimeError with its log otherwise."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "pilothouse.toml").write_text(config, encoding="utf-8")
    port = free_port()
    log_path = data_dir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    env["PILOTHOUSE_ADMIN_KEY"] = ADMIN_KEY
    cmd = [sys.executable, "-m", "pilothouse", "up", "--port", str(port), "--data-dir", str(data_dir)]
    cmd += ["--config", str(data_dir / "pilothouse.toml")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data_dir, start_new_session=True
        )
    server = Pilothouse(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pilothouse up exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"pilothouse up was not ready within {timeout_s}s:\n{log_path.read_text()[-3000:]}")


def model_block(name: str, model: str, base_url: str, *, price: str = "0", api_key_env: str | None = None) -> str:
    """A `[[models]]` entry of an OpenAI-compatible deployment."""
    lines = [
        "[[models]]",
        f'name = "{name}"',
        "[[models.deployments]]",
        'provider = "openai"',
        f'model = "{model}"',
        f'base_url = "{base_url}"',
        f'input_price_per_mtok = "{price}"',
        f'output_price_per_mtok = "{price}"',
    ]
    if api_key_env:
        lines.append(f'api_key_env = "{api_key_env}"')
    return "\n".join(lines) + "\n"
