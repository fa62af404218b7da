"""Response caching: the exact cache and the semantic cache (docs/caching.md)."""

from pilothouse.gateway.cache.stage import CachePlan, ResponseCache
from pilothouse.gateway.cache.store import CacheStore, VectorMatch, VectorRecord

__all__ = ["CachePlan", "CacheStore", "ResponseCache", "VectorMatch", "VectorRecord"]
