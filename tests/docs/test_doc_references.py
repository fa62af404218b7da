"""The code the pages name in backticks exists: repository paths (`src/...`, `tests/...`, `bench/...`), package paths
(`gateway/cache/`, `store/inflight.py`, a module named alone such as `sink.py`) and dotted names of the package
(`pilothouse.gateway.tokens.input_token_bound`), so a moved or renamed module cannot leave a page behind.

Dotted names are checked when their first part after `pilothouse.` is a module or package of it; other dotted names
(span attributes such as `pilothouse.cache.kind`, `pilothouse.toml`) are left alone."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.support.servers import REPO

SRC = REPO / "src" / "pilothouse"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TOP = {p.stem for p in SRC.glob("*.py")} | {p.parent.name for p in SRC.glob("*/__init__.py")}
"""The modules and packages directly in src/pilothouse."""
_SPAN = re.compile(r"`([^`\s]+)`")
_REPO_PATH = re.compile(r"^(src|tests|bench|scripts|docs|training|examples)/")


def references() -> list[tuple[str, str]]:
    """(page:line, name) of every backticked name that points into the code."""
    found: list[tuple[str, str]] = []
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for span in _SPAN.findall(line):
                span = span.rstrip(":,")
                is_dotted = re.match(r"^pilothouse\.[a-z_]+", span) and span.split(".")[1] in TOP
                in_package = "/" in span and span.split("/")[0] in TOP
                is_path = _REPO_PATH.match(span) or span.startswith("pilothouse/") or in_package
                if (is_dotted or is_path or span.endswith(".py")) and ".venv" not in span:
                    found.append((f"{page.relative_to(REPO)}:{number}", span))
    return found


def resolves(name: str) -> bool:
    if re.match(r"^pilothouse\.[a-z_]", name) and "/" not in name:
        return _dotted(name)
    if _REPO_PATH.match(name):
        return any(REPO.glob(name.rstrip("/"))) if "*" in name else (REPO / name).exists()
    path = name.removeprefix("pilothouse/").rstrip("/")
    candidates = [path]
    if "/" in path and not path.endswith(".py") and "." in path.rsplit("/", 1)[1]:  # `dir/module.function`
        candidates.append(path.rsplit(".", 1)[0] + ".py")
    return any((SRC / c).exists() or any(SRC.rglob(c)) for c in candidates)


def _dotted(name: str) -> bool:
    """An importable module, or an attribute of the longest importable prefix."""
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for attr in parts[end:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


REFERENCES = references()


@pytest.mark.parametrize(("where", "name"), REFERENCES, ids=[f"{w}:{n}" for w, n in REFERENCES])
def test_named_code_exists(where: str, name: str) -> None:
    assert resolves(name), f"{where} names `{name}`, which does not exist (moved or renamed?)"


def test_references_are_found_and_checked(tmp_path: Path) -> None:
    assert len(REFERENCES) > 50
    assert resolves("pilothouse.gateway.tokens") and resolves("gateway/cache/") and resolves("tests/docs/")
    assert not resolves("pilothouse.gateway.no_such_module") and not resolves("gateway/no_such.py")
    assert not resolves("pilothouse.config.NoSuchName") and not resolves("src/pilothouse/none_*.py")
