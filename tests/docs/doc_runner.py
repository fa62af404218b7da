"""Runs the examples of the docs in order, the way a reader would: one server (`pilothouse up`, its data directory
`.pilothouse` in the folder where the commands run), one folder, the real CLI on PATH and the real SDK.

- Shell and console blocks run with `bash -euo pipefail`; the shell variables a page sets stay set for its later
  blocks (as in one terminal), and the first failing command is named with its line.
- Python blocks of a page run in one namespace (as in one interpreter), in this process.
- The server listens on a free port, not 7300: `PILOTHOUSE_URL` is set to it (the CLI and the SDK read it), and
  `http://127.0.0.1:7300` in a block is replaced by its address. Nothing else is set for the examples: the key is
  the bootstrap key the server saved in `.pilothouse/admin_key`, where the CLI and the SDK find it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.docs.markdown_blocks import CONSOLE, SHELL, Block, commands, console_script
from tests.support.servers import RunningServer

DOCS_URL = "http://127.0.0.1:7300"
BLOCK_TIMEOUT_S = 300

# Saves the variables the page's blocks defined (not the environment's, not bash's own) for its next block.
_SAVE_STATE = """
for __doctest_v in $(compgen -v); do
  case "$__doctest_base" in *" $__doctest_v "*) continue ;; esac
  case "$__doctest_v" in __doctest_*|PIPESTATUS|BASH_*|FUNCNAME|_) continue ;; esac
  declare -p "$__doctest_v"
done > "$__doctest_state"
"""
_WRAPPER = (
    """__doctest_base=" $(compgen -v | tr '\\n' ' ') "
__doctest_state=$1
[ -f "$__doctest_state" ] && source "$__doctest_state"
set -euo pipefail
trap 'echo "doc-test: \\"$BASH_COMMAND\\" exited with $? (line $LINENO of the block)" >&2' ERR
source "$2"
"""
    + _SAVE_STATE
)


@dataclass
class Outcome:
    ok: bool
    output: str


@dataclass
class DocRunner:
    """Runs blocks; remembers what each printed. `start_server` is called once, when a block first needs it."""

    work_dir: Path
    home: Path
    start_server: Callable[[Path], RunningServer]
    cwd_for: Callable[[str], Path]
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    _server: RunningServer | None = None
    _namespaces: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def server(self) -> RunningServer:
        if self._server is None:
            self._server = self.start_server(self.work_dir / ".pilothouse")
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def env(self) -> dict[str, str]:
        """The environment of the examples: this one without PILOTHOUSE_* settings, the CLI on PATH, the server's
        URL, and a home folder of their own (so nothing is written to the real one)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["HOME"] = str(self.home)
        env["PILOTHOUSE_URL"] = self.server.url
        return env

    def run(self, block: Block) -> Outcome:
        """Run one block (python, shell or console) and record what it printed."""
        if block.kind == "python":
            outcome = self._python(block)
        elif block.kind in SHELL or block.kind == CONSOLE:
            script = console_script(block.text) if block.kind == CONSOLE else block.text
            outcome = self._shell(block, script)
        else:
            raise ValueError(f"{block.id}: a {block.kind} block is not run")
        self.outcomes[block.id] = outcome
        return outcome

    def check_args(self, block: Block) -> Outcome:
        """Each command of the block with `--help` appended: it must start, and its help must name every option
        the block gives it (so a renamed or removed option fails without running a long benchmark)."""
        script = console_script(block.text) if block.kind == CONSOLE else block.text
        out: list[str] = []
        for argv in commands(script):
            result = subprocess.run(
                ["bash", "-c", shlex.join(argv) + " --help"],
                cwd=self.cwd_for(block.doc),
                env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            help_text = result.stdout + result.stderr
            options = {a.split("=", 1)[0] for a in argv if a.startswith("-") and not _is_number(a)}
            unknown = sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", help_text))
            if result.returncode != 0 or unknown:
                why = f"exit {result.returncode}" if result.returncode else f"options not in its --help: {unknown}"
                return Outcome(False, f"{' '.join(argv)} --help: {why}\n{help_text}")
            out.append(f"{' '.join(argv)}: {sorted(options)}")
        return Outcome(True, "\n".join(out))

    def _python(self, block: Block) -> Outcome:
        code = "\n" * block.line + block.text.replace(DOCS_URL, self.server.url)
        namespace = self._namespaces.setdefault(block.doc, {"__name__": "__doc_example__"})
        printed = io.StringIO()
        with _environment(self.env(), self.cwd_for(block.doc)), contextlib.redirect_stdout(printed):
            try:
                exec(compile(code, block.doc, "exec"), namespace)
            except Exception:
                return Outcome(False, printed.getvalue() + traceback.format_exc())
        return Outcome(True, printed.getvalue())

    def _shell(self, block: Block, script: str) -> Outcome:
        state_dir = self.home / ".doc-test"
        state_dir.mkdir(exist_ok=True)
        slug = block.doc.replace("/", "_")
        script_path = state_dir / f"{slug}-{block.line}.sh"
        script_path.write_text(script.replace(DOCS_URL, self.server.url), encoding="utf-8")
        result = subprocess.run(
            ["bash", "-c", _WRAPPER, "doc-test", str(state_dir / f"{slug}.vars"), str(script_path)],
            cwd=self.cwd_for(block.doc),
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
        return Outcome(result.returncode == 0, result.stdout)


@contextlib.contextmanager
def _environment(env: dict[str, str], cwd: Path) -> Iterator[None]:
    """os.environ and the working directory as the examples see them, restored afterwards."""
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True
