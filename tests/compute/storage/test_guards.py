"""Idempotency keys and rate-limit counters (compute/storage/guards.py) in the service's namespace."""

from __future__ import annotations

import redis.asyncio as aioredis
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from compute.storage.guards import IdempotencyKeys, rate_limit_storage
from compute.storage.keys import RedisKeys
from tests.support.clients import run_async
from tests.support.storage import unique_prefix


def test_an_idempotency_key_is_claimed_once_until_released(redis_url):
    async def scenario():
        client = aioredis.from_url(redis_url, decode_responses=True)
        prefix = unique_prefix()
        keys = IdempotencyKeys(client, 120, key_prefix=prefix)
        try:
            first, second = {"response": {"job_id": "a"}}, {"response": {"job_id": "b"}}
            assert await keys.claim("user:u", "k1", first) is None  # claimed
            assert await keys.claim("user:u", "k1", second) == first  # the first entry, unchanged
            assert await keys.claim("user:v", "k1", second) is None  # scopes are apart
            assert 0 < await client.ttl(RedisKeys(prefix).idempotency("user:u", "k1")) <= 120
            await keys.release("user:u", "k1")
            assert await keys.claim("user:u", "k1", second) is None
            assert await keys.claim("user:u", "k1", first) == second
        finally:
            await client.aclose()

    run_async(scenario)


def test_rate_limit_counters_live_under_the_namespace(redis_url):
    async def scenario():
        client = aioredis.from_url(redis_url, decode_responses=True)
        keys = RedisKeys(unique_prefix())
        limiter = MovingWindowRateLimiter(rate_limit_storage(redis_url, key_prefix=keys.prefix))
        try:
            assert await limiter.hit(parse("2/minute"), "demo", "127.0.0.9")
            stored = [k async for k in client.scan_iter(match=keys.prefix + "*")]
            assert stored and all(k.startswith(keys.rate_limits + ":") for k in stored), stored
        finally:
            await client.aclose()

    run_async(scenario)
