"""Fixtures for the cache tests: a Redis client on the test server (a missing Redis fails, never skips), a
fresh key prefix per test with everything under it deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import REDIS_URL


async def redis_client() -> Redis:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as exc:
        await client.aclose()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}). Start it with 'redis-server --daemonize yes' "
            "or point PILOTHOUSE_TEST_REDIS_URL at a server."
        )
    return client


@pytest.fixture
def prefix() -> str:
    return f"ph-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[Redis]:
    client = await redis_client()
    yield client
    keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()
