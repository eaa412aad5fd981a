"""Counters that every API replica adds to and any replica reads: one Redis hash.

A scrape of ``GET /metrics`` reaches one replica behind the load balancer; counters kept only in
that replica's memory would jump between scrapes. Replicas therefore add their deltas here about
once a second (one pipelined round trip, not one write per request) and ``/metrics`` renders the sum.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from compute.storage.keys import RedisKeys


class SharedCounters:
    def __init__(self, redis: aioredis.Redis, *, key_prefix: str):
        self.redis = redis
        self.key = RedisKeys(key_prefix).http_counters

    async def add(self, deltas: dict[str, float]) -> None:
        """Add each delta to its field (integers stay integers in Redis)."""
        if not deltas:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for field, delta in deltas.items():
                if float(delta).is_integer():
                    pipe.hincrby(self.key, field, int(delta))
                else:
                    pipe.hincrbyfloat(self.key, field, delta)
            await pipe.execute()

    async def read(self) -> dict[str, float]:
        return {field: float(value) for field, value in (await self.redis.hgetall(self.key)).items()}
