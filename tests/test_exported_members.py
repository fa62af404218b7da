"""`pilothouse.__all__` names exactly the public surface of the package (like httpx's test of its exports)."""

from __future__ import annotations

import subprocess
import sys
import types

import pilothouse

PUBLIC_PRIVATE_NAMES = {"__version__"}


def _public_members(module: types.ModuleType) -> set[str]:
    """Names a user can import from the package: no private names, no submodules (e.g. `pilothouse.sdk.client`)."""
    return {
        name
        for name, value in vars(module).items()
        if (not name.startswith("_") or name in PUBLIC_PRIVATE_NAMES) and not isinstance(value, types.ModuleType)
    }


def test_all_matches_the_public_members() -> None:
    assert len(pilothouse.__all__) == len(set(pilothouse.__all__)), "duplicate names in __all__"
    assert set(pilothouse.__all__) == _public_members(pilothouse)


def test_every_exported_name_resolves_and_belongs_to_pilothouse() -> None:
    for name in pilothouse.__all__:
        value = getattr(pilothouse, name)
        if isinstance(value, type):
            assert value.__module__.startswith("pilothouse."), f"{name} comes from {value.__module__}"
    assert isinstance(pilothouse.__version__, str) and pilothouse.__version__.count(".") >= 2


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from pilothouse import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(pilothouse.__all__)


def test_a_fresh_interpreter_sees_the_same_surface() -> None:
    """In this process other tests import submodules; a clean `import pilothouse` must match `__all__` too."""
    code = (
        "import types, pilothouse;"
        "print(sorted(n for n, v in vars(pilothouse).items()"
        " if (not n.startswith('_') or n == '__version__') and not isinstance(v, types.ModuleType)));"
        "print(sorted(pilothouse.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    public, exported = out.stdout.splitlines()
    assert public == exported
