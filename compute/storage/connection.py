"""How the service connects to Redis: one client factory and one set of timeouts and retries.

Every Redis client of the service (jobs and accounts through ``connect``, the rate limiter through
``guards.rate_limit_storage``) is built with ``connection_options()``, so they fail and recover
alike.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

__all__ = ["RedisError", "connect", "connection_options"]


def connection_options() -> dict:
    """Timeouts and THE retry policy of every Redis client of the service (jobs, accounts, rate
    limits): add no other retry loop around single commands.

    After a Redis restart every pooled connection is stale and fails on first use: a command that
    hit a connection error is retried on a fresh connection (twice, 50-500 ms apart, redis-py's
    ``Retry`` with ``ExponentialBackoff``) instead of answering 503 while Redis is back. A timeout is
    not retried (the command may have run).
    """
    return {"socket_connect_timeout": 2, "socket_timeout": 5, "retry_on_timeout": False,
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            "retry_on_error": [RedisConnectionError]}


def connect(redis_url: str) -> aioredis.Redis:
    """An asyncio client answering ``str`` (what the stores and their scripts expect)."""
    return aioredis.from_url(redis_url, decode_responses=True, health_check_interval=15,
                             **connection_options())
