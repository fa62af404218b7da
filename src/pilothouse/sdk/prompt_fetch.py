"""`pilothouse.prompts.get`: fetch a prompt version for use in your own code, cached, with a fallback.

    from pilothouse import prompts
    prompt = prompts.get("support-answer")                     # the production label
    messages = prompt.render(question="Where is my parcel?")
    prompts.get("support-answer", version=3); prompts.get("support-answer", label="staging")

Answers are cached in the process for `cache_ttl_s` (60 s by default). Each answer is also written to a
last-known-good file (PILOTHOUSE_PROMPT_CACHE, default ~/.cache/pilothouse/prompts/), used when the server
cannot be reached or fails (5xx); a prompt that does not exist (404) is never served from it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pilothouse.prompts.registry.refs import DEFAULT_LABEL, parse_ref, parse_selector
from pilothouse.prompts.registry.templates import render as render_template
from pilothouse.sdk.client import DEFAULT_URL, Pilothouse, PilothouseError, default_api_key

log = logging.getLogger("pilothouse.prompts")
DEFAULT_TTL_S = 60.0


@dataclass(frozen=True)
class Prompt:
    """One prompt version: render it with `render(**variables)`; `config` is its model configuration."""

    name: str
    version: int
    content_hash: str
    template: dict[str, Any]
    label: str | None = None
    source: str = "server"  # server, cache (in-process) or fallback (the last-known-good file)
    messages: list[dict[str, Any]] | None = field(default=None, compare=False)

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.template.get("config") or {}
        return config

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        variables: dict[str, dict[str, Any]] = self.template.get("variables") or {}
        return variables

    @property
    def model(self) -> str | None:
        model = self.config.get("model")
        return str(model) if model is not None else None

    def render(self, **variables: Any) -> list[dict[str, Any]]:
        """The chat messages for these variables (VariableError names a missing or mistyped one)."""
        return render_template(self.template, variables)

    def completion_kwargs(self, **variables: Any) -> dict[str, Any]:
        """Keyword arguments for `client.chat.completions.create(...)`: model, messages and the config."""
        return {**self.config, "messages": self.render(**variables)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "template": self.template,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "server") -> Prompt:
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            content_hash=str(data["content_hash"]),
            template=dict(data["template"]),
            label=data.get("label"),
            source=source,
        )


_memory: dict[tuple[str, str, str], tuple[float, Prompt]] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the in-process cache (the last-known-good files stay)."""
    with _lock:
        _memory.clear()


def cache_dir() -> Path:
    env = os.environ.get("PILOTHOUSE_PROMPT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pilothouse" / "prompts"


def _fallback_path(directory: Path, scope: str, name: str, selector: str) -> Path:
    safe = selector.replace(":", "-")
    return directory / scope / f"{name}@{safe}.json"


def _write_fallback(path: Path, prompt: Prompt) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(orjson.dumps(prompt.to_dict()))
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("could not write the prompt cache file %s: %s", path, exc)


def _read_fallback(path: Path) -> Prompt | None:
    try:
        return Prompt.from_dict(orjson.loads(path.read_bytes()), source="fallback")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def get(
    name: str,
    label: str | None = None,
    *,
    version: int | None = None,
    variables: dict[str, Any] | None = None,
    url: str | None = None,
    api_key: str | None = None,
    cache_ttl_s: float = DEFAULT_TTL_S,
    fallback_dir: str | Path | None = None,
    timeout: float = 5.0,
) -> Prompt:
    """The prompt `name` at `label` (default production) or at `version`; `name` may also be a reference
    such as `support-answer@3`. With `variables`, they are checked now and `Prompt.messages` is rendered.

    URL and key as for `Pilothouse()`: arguments, else PILOTHOUSE_URL / PILOTHOUSE_API_KEY."""
    if version is not None and label is not None:
        raise ValueError("give a label or a version, not both")
    if "@" in name:
        if version is not None or label is not None:
            raise ValueError(f"{name!r} already names a version or label; drop label=/version=")
        ref = parse_ref(name)
    else:
        ref = parse_selector(name, str(version) if version is not None else (label or DEFAULT_LABEL))
    base = (url or os.environ.get("PILOTHOUSE_URL") or DEFAULT_URL).rstrip("/")
    key = api_key or default_api_key() or ""
    scope = hashlib.sha256(f"{base}\n{key}".encode()).hexdigest()[:16]
    cache_key = (scope, ref.name, ref.selector)
    now = time.monotonic()
    with _lock:
        hit = _memory.get(cache_key)
    if hit is not None and hit[0] > now:
        prompt = Prompt.from_dict(hit[1].to_dict(), source="cache")
    else:
        directory = Path(fallback_dir) if fallback_dir is not None else cache_dir()
        path = _fallback_path(directory, scope, ref.name, ref.selector)
        try:
            with Pilothouse(base, key or None, timeout=timeout) as ph:
                data = ph.get_prompt_version(ref.name, ref.selector)
        except PilothouseError as exc:
            if exc.status != 0 and exc.status < 500:
                raise
            stored = _read_fallback(path)
            if stored is None:
                raise
            log.warning(
                "prompt %s: the server failed (%s); using the last-known-good version %d from %s",
                ref,
                exc.message,
                stored.version,
                path,
            )
            prompt = stored
        else:
            prompt = Prompt.from_dict({**data, "label": ref.label})
            with _lock:
                _memory[cache_key] = (now + cache_ttl_s, prompt)
            _write_fallback(path, prompt)
    if variables is not None:
        prompt = Prompt(
            prompt.name,
            prompt.version,
            prompt.content_hash,
            prompt.template,
            prompt.label,
            prompt.source,
            prompt.render(**variables),
        )
    return prompt
