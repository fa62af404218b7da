"""The servers the benchmark measures: the fake upstream, the LiteLLM proxy (installed into its own virtual
environment on first use) and Pilothouse; starting each, waiting until it is ready and checking that one
request through it comes back a chat completion. Each writes its output to a log in the working directory."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import BENCH_DIR, CHAT_PATH, LITELLM_MASTER_KEY, PILOTHOUSE_ADMIN_KEY, BenchError, chat_body, log
from .processes import Processes, Server, free_port

_LOOPBACK_ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only: ignore proxies


def start_upstream(procs: Processes, delay_ms: float, work: Path, cpus: set[int] | None) -> Server:
    """`bench/upstream.py` on a free port, ready."""
    port = free_port()
    upstream = procs.start(
        "upstream",
        [sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(port), "--delay-ms", str(delay_ms)],
        f"http://127.0.0.1:{port}",
        work / "upstream.log",
        cwd=work,
        cpus=cpus,
    )
    wait_ready(upstream, "/health", 30.0)
    return upstream


def start_litellm(
    procs: Processes,
    args: argparse.Namespace,
    work: Path,
    upstream_port: int,
    cpus: set[int] | None,
    template: str = "litellm_config.yaml",
    values: dict[str, str] | None = None,
) -> tuple[Server, float]:
    """The LiteLLM proxy, one worker, no database, in front of the upstream; ready, and how long it took.

    Its configuration is `bench/<template>` with UPSTREAM_PORT, MASTER_KEY and `values` filled in.
    """
    placeholders = {"UPSTREAM_PORT": str(upstream_port), "MASTER_KEY": LITELLM_MASTER_KEY, **(values or {})}
    config = _render_config(template, work, placeholders)
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price list at start
            "LITELLM_LOG": "ERROR",  # LiteLLM's own production advice; less logging, more speed
            **_LOOPBACK_ENV,
        }
    )
    env.pop("DATABASE_URL", None)  # "no database"
    litellm_dir = work / "litellm"
    litellm_dir.mkdir()
    litellm = str(Path(args.litellm_venv) / "bin" / "litellm")
    argv = [litellm, "--config", str(config), "--port", str(port), "--num_workers", "1"]
    return _start_gateway(procs, "litellm", argv, port, "/health/liveliness", args, work, env, litellm_dir, cpus)


def start_pilothouse(
    procs: Processes,
    args: argparse.Namespace,
    work: Path,
    upstream_port: int,
    cpus: set[int] | None,
    template: str = "pilothouse.bench.toml",
    values: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[Server, float]:
    """`pilothouse up` with a fresh data directory in front of the upstream; ready, and how long it took.

    Its configuration is `bench/<template>` with UPSTREAM_PORT and `values` filled in. The caller's
    PILOTHOUSE_* variables are not passed on; `extra_env` (PILOTHOUSE_REDIS_URL, say) is.
    """
    binary = Path(args.pilothouse_bin)
    if not binary.exists():
        raise BenchError(f"{binary} does not exist; install the project (pip install -e .) or --skip-pilothouse")
    config = _render_config(template, work, {"UPSTREAM_PORT": str(upstream_port), **(values or {})})
    data_dir = work / "pilothouse-data"
    data_dir.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    env.update({"PILOTHOUSE_ADMIN_KEY": PILOTHOUSE_ADMIN_KEY, **_LOOPBACK_ENV, **(extra_env or {})})
    argv = [str(binary), "up", "--config", str(config), "--port", str(port), "--data-dir", str(data_dir)]
    argv += args.pilothouse_arg
    return _start_gateway(procs, "pilothouse", argv, port, "/readyz", args, work, env, work, cpus)


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


def _render_config(template: str, work: Path, values: dict[str, str]) -> Path:
    """`bench/<template>` with its placeholders filled in, written to the working directory."""
    text = (BENCH_DIR / template).read_text(encoding="utf-8")
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    path = work / template
    path.write_text(text, encoding="utf-8")
    return path


def _start_gateway(
    procs: Processes,
    name: str,
    argv: Sequence[str],
    port: int,
    ready_path: str,
    args: argparse.Namespace,
    work: Path,
    env: dict[str, str],
    cwd: Path,
    cpus: set[int] | None,
) -> tuple[Server, float]:
    server = procs.start(name, argv, f"http://127.0.0.1:{port}", work / f"{name}.log", env=env, cwd=cwd, cpus=cpus)
    startup = wait_ready(server, ready_path, args.start_timeout)
    log(f"{name} ready after {startup:.1f} s")
    return server, startup


def ensure_litellm(venv: Path, requirements: Path) -> str:
    """The LiteLLM version in `venv`, installing it from `requirements` when missing or not the pin."""
    python = venv / "bin" / "python"
    wanted = _pinned_litellm(requirements)
    have = installed_version(python, "litellm")
    if have is not None and (wanted is None or have == wanted) and (venv / "bin" / "litellm").exists():
        return have
    if not python.exists():
        log(f"creating {venv} for LiteLLM (kept apart from the project's venv)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing {requirements.name} into {venv} (first use only; takes a minute)")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)]
    if subprocess.run(pip, check=False).returncode != 0:
        raise BenchError(f"pip could not install {requirements}; use --skip-litellm to bench without it")
    have = installed_version(python, "litellm")
    if have is None:
        raise BenchError(f"litellm is not importable in {venv} after the install")
    return have


def _pinned_litellm(requirements: Path) -> str | None:
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*litellm(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
        if match:
            return match.group(1)
    return None


def installed_version(python: Path, package: str) -> str | None:
    """The version of `package` that the interpreter `python` imports; None when it has none."""
    if not python.exists():
        return None
    proc = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


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
            raise BenchError(f"{server.name} exited with code {code} before it was ready; {server.last_output()}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            status, _ = http_request(url, timeout=2.0)
            if status == 200:
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise BenchError(f"{server.name} was not ready on {url} after {timeout:.0f} s; {server.last_output()}")
        time.sleep(0.25)


def push_policies(server: Server, key: str, files: list[str]) -> None:
    """Push guard policy files (`POST /api/policies`) so the measured gateway runs them on every call."""
    for file in files:
        content = Path(file).read_text(encoding="utf-8")
        status, raw = http_request(server.base_url + "/api/policies", {"content": content}, key=key, timeout=60.0)
        if status != 200:
            raise BenchError(f"pushing the policy {file} failed: HTTP {status} {raw[:300]!r}")
        log(f"policy {file} pushed")


def check_completion(server: Server, name: str, key: str) -> None:
    """One request through the target: it must answer 200 with a chat.completion, or the run is void."""
    url = server.base_url + CHAT_PATH
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
        raise BenchError(f"{name}: {problem}: {raw[:500].decode(errors='replace')}\n{server.last_output()}")
