"""The import rules of docs/architecture.md ("Packages and import rules"), checked on the source.

Every `import` in src/pilothouse counts: at module level, inside functions, under `if TYPE_CHECKING:`. A rule is
broken by a direct import and by a chain of them (store -> helper -> gateway); the message names the file, the line
of the first import of the chain, the chain and the rule. Importing `a.b.c` counts as an import of `a.b.c` only,
not of the packages `a` and `a.b` whose `__init__` Python also runs: those are public surfaces (`pilothouse`
re-exports the SDK), not dependencies. A new package gets its rule by adding one line to RULES (and the row the
test then asks for in docs/architecture.md).
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "pilothouse"


@dataclass(frozen=True)
class Rule:
    package: str
    """A package or module, dotted, below `pilothouse` (`gateway.providers`); "" for every module."""
    forbidden: tuple[str, ...] = ()
    """What it may not import, directly or through other modules."""
    why: str = ""
    third_party: tuple[str, ...] | None = None
    """When set, the only imports allowed besides the standard library and the package's own modules."""
    exempt: tuple[str, ...] = ()
    """Packages or modules the rule does not apply to (only with package "")."""

    def describe(self) -> str:
        where = f"`{self.package.replace('.', '/')}/`" if self.package else "every module"
        if self.third_party is not None:
            return f"{where} imports only the standard library, {', '.join(self.third_party)} and itself"
        but = f" (except {', '.join(f'`{e}`' for e in self.exempt)})" if self.exempt else ""
        return f"{where}{but} imports no {', '.join(f'`{f}`' for f in self.forbidden)}"

    def doc_row(self) -> str:
        return f"| {self.describe()} | {self.why} |"


RULES = (
    Rule(
        "store", ("gateway", "server", "cli", "prompts", "sdk", "costs"), "the bottom layer; the others keep rows here"
    ),
    Rule("gateway", ("server", "cli", "sdk"), "the gateway runs requests for every caller; the faces call it"),
    Rule(
        "gateway.providers",
        ("gateway.routing", "gateway.cache", "gateway.limits", "gateway.pipeline", "gateway.stages"),
        "a provider speaks to one upstream; the stages use providers, never the reverse",
    ),
    Rule("embeddings", ("gateway", "server", "prompts", "cli"), "shared by the cache, and by RAG and evals later"),
    Rule("vectors", ("gateway", "server", "prompts", "cli"), "shared by the cache, and by RAG later"),
    Rule("server", ("cli",), "the HTTP face does not use the command line's code"),
    Rule("datasets", ("gateway", "server", "cli", "sdk", "prompts"), "datasets are data: evaluation and RAG read them"),
    Rule("evals", ("server", "cli", "sdk"), "evaluation runs for the HTTP API, the CLI and the SDK alike"),
    Rule(
        "testing",
        ("server", "cli", "gateway", "store"),
        "the pytest plugin runs inside users' own suites, with no server or store",
    ),
    Rule("sdk", ("server", "gateway", "store"), "the SDK is a client over HTTP: none of the server side"),
    Rule("tracing", ("server", "cli", "gateway"), "every capability records traces; tracing knows none of them"),
    Rule(
        "tools",
        ("gateway", "server", "cli", "sdk"),
        "tool permissions are checked by the gateway and by workflows alike",
    ),
    Rule("flows", ("server", "cli", "sdk"), "workflows run on the server's workers and in worker processes alike"),
    Rule("rag", ("server", "cli", "sdk"), "retrieval serves the gateway, workflows and the faces alike"),
    Rule(
        "ui",
        ("cli", "sdk"),
        "the dashboard is part of the HTTP face: it reads through the server's own services, never as a client",
    ),
    Rule("stats", why="plain statistics, reused by canaries, evals and monitors", third_party=("numpy", "scipy")),
    Rule("", ("cli",), "only `python -m pilothouse` starts the command line", exempt=("cli", "__main__")),
)


def _within(module: str, package: str) -> bool:
    full = f"pilothouse.{package}" if package else "pilothouse"
    return module == full or module.startswith(full + ".")


@dataclass(frozen=True)
class ModuleImports:
    path: Path
    internal: list[tuple[str, int]]
    """(module of the package, line) for each import of one."""
    external: list[tuple[str, int]]
    """(top-level name, line) for each import from outside the package."""


def read_package(src: Path) -> dict[str, ModuleImports]:
    """Every module under `src` (a `pilothouse` folder) with what it imports."""
    files = {_module_name(src, f): f for f in sorted(src.rglob("*.py"))}
    graph: dict[str, ModuleImports] = {}
    for name, path in files.items():
        internal: list[tuple[str, int]] = []
        external: list[tuple[str, int]] = []
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(name, is_package, node.module, node.level)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if target == "pilothouse" or target.startswith("pilothouse."):
                    module = _known_module(target, files)
                    if module is not None:
                        internal.append((module, node.lineno))
                else:
                    external.append((target.split(".")[0], node.lineno))
        graph[name] = ModuleImports(path, sorted(set(internal), key=lambda e: e[1]), external)
    return graph


def _module_name(src: Path, path: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, is_package: bool, target: str | None, level: int) -> str:
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _known_module(target: str, files: dict[str, Path]) -> str | None:
    """`a.b.name`: the module a.b.name if there is one, else a.b (the name is something a.b defines)."""
    if target in files:
        return target
    parent = target.rsplit(".", 1)[0]
    return parent if parent in files and "." in target else None


def _chain_to(start: str, graph: dict[str, ModuleImports], bad: tuple[str, ...]) -> list[str] | None:
    """The shortest import chain from `start` to a module inside one of `bad` (packages), or None."""
    seen = {start: [start]}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        if any(_within(module, b) for b in bad):
            return seen[module]
        for target, _ in graph[module].internal if module in graph else []:
            if target not in seen:
                seen[target] = [*seen[module], target]
                queue.append(target)
    return None


def violations(src: Path, rules: tuple[Rule, ...]) -> list[str]:
    graph = read_package(src)
    stdlib = sys.stdlib_module_names
    found: list[str] = []
    for rule in rules:
        members = [m for m in graph if _within(m, rule.package) if not any(_within(m, e) for e in rule.exempt)]
        for module in members:
            where = graph[module].path.relative_to(src.parent.parent)
            if rule.third_party is not None:
                allowed = set(rule.third_party) | stdlib
                bad = [(t, ln) for t, ln in graph[module].external if t not in allowed]
                bad += [(t, ln) for t, ln in graph[module].internal if not _within(t, rule.package)]
                found += [f"{where}:{ln}: imports {t}; rule: {rule.describe()} ({rule.why})" for t, ln in bad]
                continue
            for target, line in graph[module].internal:
                if rule.package and _within(target, rule.package):
                    continue  # its own modules are checked as members
                chain = _chain_to(target, graph, rule.forbidden)
                if chain is not None:
                    via = f" (via {' -> '.join(chain)})" if len(chain) > 1 else ""
                    found.append(f"{where}:{line}: imports {chain[-1]}{via}; rule: {rule.describe()} ({rule.why})")
    return found


def test_the_package_follows_the_import_rules() -> None:
    broken = violations(SRC, RULES)
    assert not broken, "import rules broken (docs/architecture.md, Packages and import rules):\n" + "\n".join(broken)


def test_every_rule_names_packages_that_exist() -> None:
    graph = read_package(SRC)
    for rule in RULES:
        for name in (rule.package, *rule.forbidden, *rule.exempt):
            assert any(_within(m, name) for m in graph), f"{rule.describe()}: there is no pilothouse.{name}"


def test_the_architecture_page_lists_every_rule() -> None:
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [rule.doc_row() for rule in RULES if rule.doc_row() not in page]
    assert not missing, "add (or update) these rows in docs/architecture.md:\n" + "\n".join(missing)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pilothouse" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pilothouse"


def test_every_kind_of_import_is_seen(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        {
            "__init__.py": "from pilothouse.sdk import Client\n",
            "__main__.py": "from pilothouse.cli import main\n",
            "cli/__init__.py": "def main() -> None: ...\n",
            "sdk/__init__.py": "class Client: ...\n",
            "helpers.py": "import pilothouse.gateway.core\n",
            "gateway/__init__.py": "",
            "gateway/core.py": "x = 1\n",
            "server/__init__.py": "",
            "server/app.py": "from pilothouse import cli\n",
            "store/__init__.py": "from pilothouse.store.rows import Row\n",
            "store/rows.py": "class Row: ...\n\n\ndef load():\n    from pilothouse.gateway.core import x\n",
            "store/types.py": "import typing\n\nif typing.TYPE_CHECKING:\n    from pilothouse.server.app import y\n",
            "store/keys.py": "from .. import helpers\n",
            "store/fine.py": "from . import rows\n",
            "stats/__init__.py": "import math\nimport numpy\nimport requests\nfrom pilothouse.store import rows\n",
        },
    )
    found = "\n".join(violations(src, RULES))
    assert "pilothouse/store/rows.py:5: imports pilothouse.gateway.core;" in found  # in a function
    assert "pilothouse/store/types.py:4: imports pilothouse.server.app;" in found  # under TYPE_CHECKING
    assert (
        "pilothouse/store/keys.py:1: imports pilothouse.gateway.core (via pilothouse.helpers -> "
        "pilothouse.gateway.core);" in found
    )  # relative, and through another module
    assert "pilothouse/server/app.py:1: imports pilothouse.cli;" in found  # `from pilothouse import cli`
    assert "pilothouse/stats/__init__.py:3: imports requests;" in found
    assert "pilothouse/stats/__init__.py:4: imports pilothouse.store.rows;" in found
    assert "imports no `gateway`, `server`, `cli`, `prompts`, `sdk`, `costs` (the bottom layer;" in found
    assert not any(ln.split(":")[0].endswith(("fine.py", "__main__.py")) for ln in found.splitlines())
    assert "imports numpy" not in found and "imports math" not in found
    assert len(found.splitlines()) == 8, found  # types.py and app.py break two rules each
