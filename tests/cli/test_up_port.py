"""`pilothouse up` on a port already taken: one line naming the process that holds it, exit 1, and no "listening"
banner (the port is bound before anything starts, and the banner printed only once the socket listens)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pilothouse.cli.listen import ListenError, bind_listener, find_holder
from tests.support.servers import start_server

CONFIG = """\
include_default_models = false
canary_check_interval_s = 0

[local]
preload = false

[[models]]
name = "fake-chat"
deployments = [{provider = "fake", model = "fake"}]
"""


@pytest.fixture
def taken() -> Iterator[int]:
    """A port this process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_the_holder_of_a_port_is_found(taken: int) -> None:
    holder = find_holder(taken)
    assert holder is not None and holder.pid == os.getpid()
    assert "python" in holder.command or "pytest" in holder.command


def test_binding_a_taken_port_names_the_holder(taken: int) -> None:
    with pytest.raises(ListenError) as info:
        bind_listener("127.0.0.1", taken)
    message = str(info.value)
    assert f"port {taken} is already in use on 127.0.0.1 (by pid {os.getpid()} " in message
    assert "--port" in message and "\n" not in message


def test_a_free_port_is_listening_once_bound() -> None:
    sock = bind_listener("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):  # accepted into the backlog already
            pass
    finally:
        sock.close()


def test_an_address_not_of_this_machine_is_one_line() -> None:
    with pytest.raises(ListenError, match=r"cannot listen on 192\.0\.2\.1:\d+: .*check --host"):
        bind_listener("192.0.2.1", 0)  # TEST-NET-1: never local


@pytest.mark.slow
def test_up_on_a_taken_port_fails_at_once_without_a_banner(taken: int, tmp_path: Path) -> None:
    config = tmp_path / "pilothouse.toml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pilothouse", "up", "--port", str(taken), "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "COLUMNS": "300"},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "listening" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: port {taken} is already in use on 127.0.0.1 (by pid {os.getpid()} "
        f"({_cmdline()})); stop it, or choose another port with --port or PILOTHOUSE_PORT"
    ]
    assert not (tmp_path / ".pilothouse").exists(), "nothing was started, so nothing was created"
    assert time.monotonic() - started < 30


def _cmdline() -> str:
    text = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return text if len(text) <= 100 else text[:99] + "…"


@pytest.mark.slow
def test_a_second_server_on_the_same_port_names_the_first(tmp_path: Path) -> None:
    config = tmp_path / "pilothouse.toml"
    config.write_text(CONFIG)
    first = start_server(tmp_path / "first", config=config)
    try:
        assert "listening on" in first.log()
        assert httpx.get(first.url + "/healthz", timeout=5).status_code == 200
        port = first.url.rsplit(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
        proc = subprocess.run(
            [sys.executable, "-m", "pilothouse", "up", "--port", port, "--config", str(config)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**env, "COLUMNS": "300"},
            timeout=60,
            check=False,
            start_new_session=True,
        )
        assert proc.returncode == 1, proc.stderr
        assert f"by pid {first.process.pid} " in proc.stderr and "another Pilothouse server" in proc.stderr
    finally:
        first.stop()
