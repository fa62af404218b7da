"""The fenced code blocks of a Markdown page, with the `doc-test` marker written before each, and the commands of
shell and console blocks."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SHELL = frozenset({"bash", "sh", "shell"})
"""Blocks that are shell scripts: run as written."""
CONSOLE = "console"
"""A terminal session: the lines starting with `$ ` (and their `\\` continuations) are commands, the rest output."""
KINDS = frozenset({"python", *SHELL, CONSOLE, "toml", "yaml", "json", "markdown", "text"})
"""Every info string a block may have. `text` is output or prose, never run."""

MARKER_KINDS = frozenset({"skip", "args-only"})
"""`skip`: not run at all. `args-only`: each command is run with `--help` and must know every option it is given
(long benchmarks)."""

_FENCE = re.compile(r"^(`{3,})\s*([^`\s]*)[^`]*$")
_MARKER = re.compile(r"^<!--\s*doc-test:\s*([a-z-]+):\s*(.*?)\s*-->$")


class MarkdownError(ValueError):
    """A page the tests cannot read safely: an unclosed fence or a malformed `doc-test` marker."""


@dataclass(frozen=True)
class Marker:
    kind: str
    reason: str


@dataclass(frozen=True)
class Block:
    """One fenced block. `line` is the line of its opening fence (1-based), so `doc:line` names it."""

    doc: str
    line: int
    kind: str
    text: str
    marker: Marker | None = None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def first_line(self) -> str:
        return next((ln.strip() for ln in self.text.splitlines() if ln.strip()), "")

    @property
    def first_command(self) -> str:
        """The first command of a shell block, without its comment: what the block is known by in lists."""
        return " ".join(next(iter(commands(self.text)), []))


def read_blocks(path: Path, doc: str) -> list[Block]:
    """The fenced blocks of the page at `path` (named `doc` in test ids), in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: Marker | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line.strip())
        if marker:
            if marker.group(1) not in MARKER_KINDS or not marker.group(2):
                raise MarkdownError(f"{doc}:{i + 1}: a marker is `<!-- doc-test: skip|args-only: REASON -->`")
            pending = Marker(marker.group(1), marker.group(2))
        elif "doc-test" in line and line.lstrip().startswith("<!--"):
            raise MarkdownError(f"{doc}:{i + 1}: a marker is `<!-- doc-test: skip|args-only: REASON -->`")
        fence = _FENCE.match(line)
        if fence:
            ticks, kind = fence.group(1), fence.group(2)
            end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == ticks), None)
            if end is None:
                raise MarkdownError(f"{doc}:{i + 1}: the block opened here is never closed")
            blocks.append(Block(doc, i + 1, kind, "\n".join(lines[i + 1 : end]) + "\n", pending))
            pending = None
            i = end
        elif pending is not None and line.strip() and not marker:
            raise MarkdownError(f"{doc}:{i + 1}: a doc-test marker must come right before a block")
        i += 1
    return blocks


def console_script(text: str) -> str:
    """The commands of a console block (`$ ` lines and their continuations), one script; output lines dropped."""
    out: list[str] = []
    continued = False
    for line in text.splitlines():
        if continued:
            out.append(line)
        elif line.startswith("$ "):
            out.append(line[2:])
        else:
            continue
        continued = line.rstrip().endswith("\\")
    return "\n".join(out) + "\n"


def commands(script: str) -> list[list[str]]:
    """The simple commands of a script of one-line commands (continuations joined), as argv; comments and blank
    lines dropped. For checking arguments; heredocs and pipes are not understood."""
    out: list[list[str]] = []
    pending = ""
    for line in script.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        argv = shlex.split(pending + line, comments=True)
        pending = ""
        if argv:
            out.append(argv)
    return out
