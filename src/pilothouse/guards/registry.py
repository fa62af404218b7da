"""Finding scanner classes (built in, or plugins through the `pilothouse.scanners` entry point group) and
building scanners from a policy's options.

A plugin registers a class under its scanner name, for example in its `pyproject.toml`:

    [project.entry-points."pilothouse.scanners"]
    mycorp_pii = "mycorp_guards:MyCorpPiiScanner"

The class must implement `pilothouse.guards.scanner.Scanner` (`name`, `redacts`, `scan`) and accept its
options as keyword arguments; `tests/guards/test_scanner_conformance.py` runs over every registered scanner.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from pilothouse.config import ConfigError
from pilothouse.guards.scanner import Scanner

GROUP = "pilothouse.scanners"

_BUILTIN: dict[str, str] = {
    "injection": "pilothouse.guards.injection.layered:InjectionScanner",
    "injection_heuristics": "pilothouse.guards.injection.heuristics:InjectionHeuristics",
    "injection_classifier": "pilothouse.guards.injection.classifier:InjectionClassifier",
    "pii": "pilothouse.guards.pii.scanner:PiiScanner",
    "secrets": "pilothouse.guards.secrets:SecretsScanner",
    "toxicity": "pilothouse.guards.toxicity.scanner:ToxicityScanner",
    "denied_topics": "pilothouse.guards.topics:DeniedTopicsScanner",
    "system_prompt_leak": "pilothouse.guards.leakage:SystemPromptLeakScanner",
    "json_schema": "pilothouse.guards.structured:JsonSchemaScanner",
    "links": "pilothouse.guards.links:LinksScanner",
    "code": "pilothouse.guards.code:CodeScanner",
}


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


def scanner_names() -> list[str]:
    """Every scanner name that can be used in a policy: the built-in ones and installed plugins."""
    return sorted(set(_BUILTIN) | {ep.name for ep in entry_points(group=GROUP)})


def scanner_class(name: str) -> type[Scanner]:
    """The scanner class registered as `name`; ConfigError when none is, or it does not look like a Scanner."""
    if name in _BUILTIN:
        target, loaded = _BUILTIN[name], _load(_BUILTIN[name])
    else:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not found:
            raise ConfigError(f"unknown scanner {name!r}: installed scanners are {', '.join(scanner_names())}")
        target, loaded = found[0].value, found[0].load()
    if not isinstance(loaded, type) or not callable(getattr(loaded, "scan", None)):
        raise ConfigError(f"scanner {name!r} ({target}) is not a class with a scan(text, ctx) method")
    if not isinstance(getattr(loaded, "redacts", None), bool):
        raise ConfigError(f"scanner {name!r} ({target}) does not declare `redacts` (True or False)")
    return loaded


def build_scanner(name: str, options: Mapping[str, Any] | None = None) -> Scanner:
    """A scanner instance from its name and options; ConfigError (naming the scanner) for bad options."""
    cls = scanner_class(name)
    try:
        return cls(**dict(options or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"scanner {name!r}: bad options {dict(options or {})!r}: {exc}") from exc
