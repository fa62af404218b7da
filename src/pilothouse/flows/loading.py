"""Loading a flow from its reference: `path/to/file.py:attr` or `package.module:attr`.

A run records the reference it was started from (a file reference made absolute), so a worker, possibly in
another process, loads the same definition to execute or resume it. Loading a file runs its code, so only
callers allowed to run code on the worker may start runs from a reference (the API asks for the admin role).
Every failure is a `FlowLoadError` with one line that names the reference and what to fix, never a traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pilothouse.flows.graph import Flow


class FlowLoadError(ValueError):
    """A flow reference that cannot be loaded; the message says why and how to fix it."""


_lock = threading.Lock()
_files: dict[tuple[str, int], ModuleType] = {}


def split_ref(ref: str) -> tuple[str, str]:
    """`("path/or.module", "attr")`; a FlowLoadError for anything else."""
    if "\x00" in ref or not ref.strip():
        raise FlowLoadError(f"{ref!r} is not a flow reference; use path/to/file.py:flow or package.module:flow")
    target, sep, attr = ref.strip().rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise FlowLoadError(
            f"{ref!r} is not a flow reference; use path/to/file.py:flow or package.module:flow "
            "(the part after ':' names the Flow object)"
        )
    return target, attr


def is_file_ref(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def normalise_ref(ref: str, base_dir: Path | None = None) -> str:
    """The reference with a file made absolute (against `base_dir`, default the working directory), so it
    loads the same from any process on this machine. Checks the file exists; does not run it."""
    target, attr = split_ref(ref)
    if not is_file_ref(target):
        return f"{target}:{attr}"
    path = _file(target, base_dir)
    return f"{path}:{attr}"


def root_ref(ref: str) -> str:
    """The loadable part of a run's reference: a sub-flow's run is `<root ref>#step#...` (flows/subflows.py)."""
    return ref.split("#", 1)[0]


def load_flow(ref: str, base_dir: Path | None = None) -> Flow:
    """Import the reference's file or module and return its Flow (a file is imported once per modification)."""
    from pilothouse.flows.graph import Flow

    target, attr = split_ref(ref)
    module = _import_file(_file(target, base_dir)) if is_file_ref(target) else _import_module(target)
    if not hasattr(module, attr):
        names = sorted(n for n, v in vars(module).items() if isinstance(v, Flow))
        hint = f"it defines {', '.join(names)}" if names else "it defines no Flow"
        raise FlowLoadError(f"{target} has no attribute {attr!r} ({hint})")
    found = getattr(module, attr)
    if not isinstance(found, Flow):
        raise FlowLoadError(f"{target}:{attr} is a {type(found).__name__}, not a pilothouse.flows.Flow")
    return found


def _file(target: str, base_dir: Path | None) -> Path:
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = path.resolve()
    if path.suffix != ".py":
        raise FlowLoadError(f"{target}: a flow file is a Python file ending in .py")
    if not path.is_file():
        raise FlowLoadError(f"{target}: no such file ({path})")
    return path


def _import_file(path: Path) -> ModuleType:
    key = (str(path), path.stat().st_mtime_ns)
    with _lock:
        found = _files.get(key)
        if found is not None:
            return found
        name = "pilothouse_flow_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise FlowLoadError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pydantic models look their module up while it runs
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise FlowLoadError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
        _files[key] = module
        return module


def _import_module(target: str) -> ModuleType:
    if not all(part.isidentifier() for part in target.split(".")):
        raise FlowLoadError(f"{target!r} is neither a .py file nor a module name")
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise FlowLoadError(f"{target}: no module named {exc.name!r} (is it installed or on PYTHONPATH?)") from exc
    except Exception as exc:
        raise FlowLoadError(f"{target} failed to import: {type(exc).__name__}: {exc}") from exc
