"""Progress reported from inside a running chunk (``ChunkContext.progress``).

A chunk runs in a Ray worker, which has no event loop of its own: this writer uses redis-py's
synchronous client. A fraction is a hint for the chunk table, not part of the job record, so it
publishes no event (the record's rule, ``jobs.py``, is about records) and is dropped when the
chunk's fact is stored.
"""

from __future__ import annotations

from functools import lru_cache

import redis

from compute.storage.connection import RedisError
from compute.storage.keys import RedisKeys


class ChunkProgress:
    def __init__(self, redis_url: str, key_prefix: str, ttl_seconds: int):
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True, socket_connect_timeout=2,
                                          socket_timeout=2)
        self.keys, self.ttl = RedisKeys(key_prefix), ttl_seconds

    def report(self, job_id: str, index: int, fraction: float) -> None:
        """Best effort: a Redis hiccup must not fail the chunk."""
        key = self.keys.chunk_progress(job_id)
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, str(index), f"{fraction:.4f}")
                pipe.expire(key, self.ttl)
                pipe.execute()
        except RedisError:
            pass


@lru_cache(maxsize=4)
def chunk_progress(redis_url: str, key_prefix: str, ttl_seconds: int) -> ChunkProgress:
    """One writer per worker process (its connection pool is reused by every chunk it runs)."""
    return ChunkProgress(redis_url, key_prefix, ttl_seconds)
