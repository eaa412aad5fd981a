"""Storage of the HTTP edge's request guards: idempotency keys and rate-limit counters.

Both live in the service's namespace (``keys.py``), so two services on one Redis neither replay
each other's responses nor share each other's limits. What a guard decides (409, 429, replay) is
the edge's business (``serve_app/submission.py``, ``serve_app/rate_limits.py``); this module only
keeps the state.
"""

from __future__ import annotations

from typing import Optional

import orjson
import redis.asyncio as aioredis

from compute.storage.connection import connection_options
from compute.storage.keys import RedisKeys

__all__ = ["IdempotencyKeys", "rate_limit_storage"]


class IdempotencyKeys:
    """The first response for each idempotency key, kept ``ttl_seconds`` (an atomic ``SET NX``
    claim: of two concurrent requests with one key exactly one gets to start a job)."""

    def __init__(self, redis: aioredis.Redis, ttl_seconds: int, *, key_prefix: str):
        self.redis = redis
        self.ttl = ttl_seconds
        self.keys = RedisKeys(key_prefix)

    async def claim(self, scope: str, key: str, entry: dict) -> Optional[dict]:
        """Store ``entry`` under the key unless one is there; return the existing entry if so."""
        name = self.keys.idempotency(scope, key)
        if await self.redis.set(name, orjson.dumps(entry), nx=True, ex=self.ttl):
            return None
        existing = await self.redis.get(name)
        return orjson.loads(existing) if existing else None

    async def release(self, scope: str, key: str) -> None:
        await self.redis.delete(self.keys.idempotency(scope, key))


def rate_limit_storage(redis_url: str, *, key_prefix: str):
    """Async rate-limit counters of the ``limits`` library in the same Redis, under the namespace,
    with the service's retry policy (shared by every replica's limiter)."""
    from limits.aio.storage import RedisStorage

    return RedisStorage("async+" + redis_url, implementation="redispy",
                        key_prefix=RedisKeys(key_prefix).rate_limits, **connection_options())
