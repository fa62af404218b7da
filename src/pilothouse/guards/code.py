"""The `code` scanner: code in a text, fenced (```lang ... ``` or ~~~) or not, with its language, for policies
that do not want a model to hand out shell commands, SQL or scripts (OWASP LLM05, when answers reach a
terminal, a database or a browser unreviewed).

A fence's language comes from its info string (```sh is bash), or from its content when the fence names
none. Outside fences, runs of consecutive lines that look like code (a language's strong signals, or code
punctuation on most lines) are reported with the language they most resemble. Detection is by patterns:
code in a single inline `span`, one-line snippets without strong signals, and languages not listed below
are missed or reported as `unknown` (which `deny_all` denies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pilothouse.guards.scanner import Finding, ScanContext, Verdict

_ALIASES = {
    "sh": "bash", "shell": "bash", "zsh": "bash", "console": "bash", "shell-session": "bash", "ps1": "powershell",
    "pwsh": "powershell", "ps": "powershell", "py": "python", "python3": "python", "js": "javascript",
    "node": "javascript", "ts": "typescript", "postgresql": "sql", "mysql": "sql", "sqlite": "sql", "psql": "sql",
    "plsql": "sql", "tsql": "sql", "bat": "batch", "cmd": "batch", "c++": "cpp", "cs": "csharp", "rb": "ruby",
    "golang": "go", "htm": "html", "rs": "rust", "yml": "yaml", "php3": "php",
}  # fmt: skip

_SIGNALS: dict[str, tuple[str, ...]] = {
    "bash": (
        r"^\s*#!\s*/(?:usr/)?bin/(?:env\s+)?(?:ba|z)?sh",
        r"^\s*(?:sudo|apt(?:-get)?|yum|brew|chmod|chown|rm\s+-[rf]+"
        r"|export\s+\w+=|echo\s+\S|cd\s+\S|ls(?:\s+-\w+)?$|mkdir\s|wget\s|curl\s+-?\S|nc\s+-|dd\s+if=)",
        r"\|\s*(?:ba)?sh\b",
        r"\$\(\s*\w",
        r"^\s*\$\s+\w",
        r"&&\s*\w+",
        r"^\s*(?:fi|done|then|esac|do)\s*;?\s*$",
    ),
    "powershell": (
        r"\b(?:Get|Set|New|Remove|Invoke|Start|Stop|Write|Import)-[A-Z]\w+",
        r"\$env:\w+",
        r"\bIEX\b",
        r"-ExecutionPolicy\b",
        r"\[System\.\w+",
        r"\|\s*Out-\w+",
    ),
    "sql": (
        r"\bSELECT\b.+\bFROM\b",
        r"(?i)^\s*select\s+(?:[\w.*]+\s*,\s*)*[\w.*]+\s+from\s+[\w.]+\s*(?:where\b|join\b|order\b|group\b|limit\b|;|$)",
        r"(?i)\bINSERT\s+INTO\s+[\w.]+\s*(?:\(|values\b)",
        r"(?i)\bUPDATE\s+[\w.]+\s+SET\s+\w+\s*=",
        r"(?i)\bDELETE\s+FROM\s+[\w.]+",
        r"(?i)\bDROP\s+(?:TABLE|DATABASE)\s+\w+",
        r"\bCREATE\s+(?:TABLE|INDEX|VIEW)\b",
        r"(?i)\bALTER\s+TABLE\s+\w+",
        r"(?i)\bUNION\s+(?:ALL\s+)?SELECT\b",
    ),
    "python": (
        r"^\s*def\s+\w+\s*\(.*\)\s*(?:->.*)?:\s*$",
        r"^\s*(?:from\s+[\w.]+\s+)?import\s+\w+",
        r"^\s*class\s+\w+.*:\s*$",
        r"\bprint\(",
        r"^\s*if\s+__name__\s*==",
        r"\bself\.\w+",
        r"^\s*(?:elif|except|with)\b.*:\s*$",
    ),
    "javascript": (
        r"\bfunction\s*\w*\s*\(",
        r"^\s*(?:const|let|var)\s+\w+\s*=",
        r"=>\s*[{(]?",
        r"\bconsole\.\w+\(",
        r"\bdocument\.\w+",
        r"\brequire\(['\"]",
        r"^\s*export\s+(?:default|const|function)",
    ),
    "html": (r"<(?:script|iframe|div|html|body|form|img|a)\b[^>]*>", r"</\w+>"),
    "batch": (r"(?i)^\s*@echo\s+off", r"(?i)^\s*set\s+\w+=", r"%\w+%"),
}
LANGUAGES = (*_SIGNALS, "c", "cpp", "csharp", "go", "java", "ruby", "rust", "php", "typescript", "yaml", "unknown")
"""Language names `denied_languages` accepts (aliases such as sh, ps1, js, py are accepted too)."""

_COMPILED = {lang: [re.compile(p, re.MULTILINE) for p in pats] for lang, pats in _SIGNALS.items()}
_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)(?:^[ \t]*(?P=fence)[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)
_CODE_PUNCT = re.compile(r"[;{}]\s*$|^\s*[}\])]|\w\(.*\)|^\s*(?:#|//)\s*\w|^\s{4,}\S|\s(?:==|!=|\+=|:=|->)\s")


def normalise_language(name: str) -> str:
    lowered = name.strip().lower()
    return _ALIASES.get(lowered, lowered)


_GUESS_LINE_CHARS = 1000
_GUESS_CHARS = 20_000


def guess_language(code: str) -> tuple[str, int]:
    """The language `code` most resembles and how many of its signals matched (("unknown", 0): none). Only the
    first 20,000 characters and 1,000 per line are read, which keeps the patterns linear on hostile input."""
    code = "\n".join(line[:_GUESS_LINE_CHARS] for line in code[:_GUESS_CHARS].splitlines())
    best, hits = "unknown", 0
    for lang, patterns in _COMPILED.items():
        count = sum(1 for p in patterns if p.search(code))
        if count > hits:
            best, hits = lang, count
    return best, hits


@dataclass(frozen=True, slots=True)
class CodeBlock:
    start: int
    end: int
    language: str
    fenced: bool


def find_code(text: str) -> list[CodeBlock]:
    """Fenced blocks, then unfenced runs of code-like lines outside them."""
    blocks: list[CodeBlock] = []
    taken: list[tuple[int, int]] = []
    for m in _FENCE.finditer(text):
        info = m.group("info").strip().split()
        language = normalise_language(info[0]) if info else guess_language(m.group("body"))[0]
        blocks.append(CodeBlock(m.start(), m.end(), language or "unknown", True))
        taken.append((m.start(), m.end()))
    run: list[tuple[int, int, str]] = []
    offset = 0
    fence = 0  # the first fenced block that does not end before this line (blocks are in text order)
    for line in text.splitlines(keepends=True):
        start, end = offset, offset + len(line)
        offset = end
        while fence < len(taken) and taken[fence][1] <= start:
            fence += 1
        inside = fence < len(taken) and taken[fence][0] <= start
        stripped = line.strip()
        if not inside and stripped and _looks_like_code(stripped, line):
            run.append((start, end, line))
            continue
        _close(run, text, blocks)
        run = []
    _close(run, text, blocks)
    return sorted(blocks, key=lambda b: (b.start, b.end))


def _looks_like_code(stripped: str, line: str) -> bool:
    line = line[:_GUESS_LINE_CHARS]
    if guess_language(line)[1] > 0:
        return True
    return (bool(_CODE_PUNCT.search(line)) and not stripped.endswith((".", "?", "!"))) or stripped.endswith(";")


def _close(run: list[tuple[int, int, str]], text: str, blocks: list[CodeBlock]) -> None:
    if not run:
        return
    body = "".join(line for _, _, line in run)
    language, hits = guess_language(body)
    if hits >= 1 or len(run) >= 3:
        start = run[0][0] + (len(run[0][2]) - len(run[0][2].lstrip()))
        end = run[-1][1] - (len(run[-1][2]) - len(run[-1][2].rstrip()))
        blocks.append(CodeBlock(start, end, language, False))


class CodeScanner:
    """Options: `denied_languages` (e.g. ["bash", "powershell", "sql"]) or `deny_all` (any code at all,
    `unknown` included). With neither, nothing is denied and every text passes."""

    name: ClassVar[str] = "code"
    redacts: ClassVar[bool] = False
    conformance_options: ClassVar[dict[str, Any]] = {"denied_languages": ["bash", "powershell", "sql"]}

    def __init__(self, *, denied_languages: Sequence[str] = (), deny_all: bool = False) -> None:
        if isinstance(denied_languages, str) or not isinstance(denied_languages, Sequence):
            raise ValueError("`denied_languages` is a list such as ['bash', 'sql']")
        names = {normalise_language(n) for n in denied_languages if isinstance(n, str)}
        unknown = sorted(n for n in names if n not in LANGUAGES)
        if unknown or len(names) != len(set(denied_languages)):
            raise ValueError(f"unknown language(s) {unknown or list(denied_languages)}; known: {', '.join(LANGUAGES)}")
        self.denied = frozenset(names)
        self.deny_all = bool(deny_all)

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        if not self.deny_all and not self.denied:
            return Verdict(self.name, 0.0)
        findings = []
        for block in find_code(text):
            if self.deny_all or block.language in self.denied:
                how = "fenced" if block.fenced else "unfenced"
                score = 1.0 if block.fenced else 0.8
                findings.append(
                    Finding(f"code:{block.language}", block.start, block.end, score, f"{how} {block.language} code")
                )
        return Verdict(self.name, max((f.score for f in findings), default=0.0), tuple(findings))
