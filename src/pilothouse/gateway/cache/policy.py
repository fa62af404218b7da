"""Whether a request may be answered from the cache and whether its answer may be stored.

Per request (headers):
- `Cache-Control: no-cache` or `x-pilothouse-cache: no-cache`: do not read the cache, still store the answer.
- `Cache-Control: no-store` or `x-pilothouse-cache: no-store`: neither read nor store.
- `x-pilothouse-cache: force`: cache even though the answer is sampled (temperature > 0 or none given).
- `x-pilothouse-cache: semantic` / `no-semantic`: switch the semantic cache on / off for this request.
- `x-pilothouse-cache-ttl: SECONDS`: a shorter lifetime for the stored answer (never longer than `cache.ttl_s`).
`x-pilothouse-cache` takes a comma-separated list of these words.

Per key: `cache.bypass_key_ids` lists API key ids whose calls are never cached (read or stored).
"""

from __future__ import annotations

from dataclasses import dataclass

from pilothouse.config import CacheSettings
from pilothouse.errors import InvalidRequest

CACHE_HEADER = "x-pilothouse-cache"
TTL_HEADER = "x-pilothouse-cache-ttl"
_DIRECTIVES = frozenset({"force", "no-cache", "no-store", "semantic", "no-semantic"})


@dataclass(frozen=True, slots=True)
class CacheDirectives:
    """What the caller asked for in its headers."""

    no_cache: bool = False
    no_store: bool = False
    force: bool = False
    semantic: bool | None = None  # None: as configured
    ttl_s: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    read: bool
    write: bool
    ttl_s: float
    semantic: bool
    reason: str | None  # why the cache is skipped (read and write both off), for the trace


def parse_directives(cache_control: str | None, pilothouse: str | None, ttl: str | None) -> CacheDirectives:
    """Read the cache headers; an unknown `x-pilothouse-cache` word or a bad TTL is a 400 naming it."""
    words = {w.strip().lower() for w in (cache_control or "").split(",") if w.strip()}
    no_cache = "no-cache" in words
    no_store = "no-store" in words
    force = False
    semantic: bool | None = None
    for raw in (pilothouse or "").split(","):
        word = raw.strip().lower()
        if not word:
            continue
        if word not in _DIRECTIVES:
            allowed = ", ".join(sorted(_DIRECTIVES))
            raise InvalidRequest(
                f"unknown {CACHE_HEADER} value {word!r}; use a comma-separated list of {allowed}",
                code="invalid_cache_header",
            )
        no_cache = no_cache or word == "no-cache"
        no_store = no_store or word == "no-store"
        force = force or word == "force"
        if word in ("semantic", "no-semantic"):
            semantic = word == "semantic"
    ttl_s = None
    if ttl is not None:
        try:
            ttl_s = float(ttl)
        except ValueError:
            ttl_s = -1.0
        if not ttl_s > 0:
            raise InvalidRequest(
                f"{TTL_HEADER} must be a positive number of seconds, got {ttl!r}", code="invalid_cache_header"
            )
    return CacheDirectives(no_cache=no_cache, no_store=no_store, force=force, semantic=semantic, ttl_s=ttl_s)


def decide(settings: CacheSettings, directives: CacheDirectives, *, key_id: str | None, sampled: bool) -> Decision:
    """Combine the configuration, the API key and the headers into what this request does with the cache."""
    ttl = settings.ttl_s if directives.ttl_s is None else min(settings.ttl_s, directives.ttl_s)
    semantic = settings.semantic.enabled if directives.semantic is None else directives.semantic
    reason = None
    if key_id is not None and key_id in settings.bypass_key_ids:
        reason = "key"
    elif directives.no_store:
        reason = "no-store"
    elif sampled and not (directives.force or settings.cache_sampled):
        reason = "sampled"
    if reason is not None:
        return Decision(read=False, write=False, ttl_s=ttl, semantic=False, reason=reason)
    return Decision(read=not directives.no_cache, write=True, ttl_s=ttl, semantic=semantic, reason=None)
