"""Per-client rate limits shared by every replica through Redis.

The limits are written in slowapi's syntax (``5/minute``) and enforced with ``limits``, the
engine slowapi is built on, through its asyncio API: slowapi's own checks are synchronous and
would block the replica's event loop on Redis.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from compute.storage.guards import rate_limit_storage


@dataclass
class RateLimitExceeded(Exception):
    limit: str
    retry_after: int
    headers: dict
    name: str = ""


class RateLimiter:
    def __init__(self, redis_url: str, enabled: bool = True, *, key_prefix: str):
        self.enabled = enabled
        self.storage = rate_limit_storage(redis_url, key_prefix=key_prefix)
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, name: str, limit: str, key: str) -> dict:
        """Count one request; return the headers to send, or raise RateLimitExceeded."""
        if not self.enabled:
            return {}
        item = parse(limit)
        allowed = await self.strategy.hit(item, name, key)
        stats = await self.strategy.get_window_stats(item, name, key)
        headers = {
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": str(max(0, stats.remaining)),
            "X-RateLimit-Reset": str(math.ceil(stats.reset_time)),
        }
        if not allowed:
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            headers["Retry-After"] = str(retry_after)
            raise RateLimitExceeded(limit, retry_after, headers, name)
        return headers
