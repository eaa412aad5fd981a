"""The one policy for work that must outlast a Redis outage (tenacity).

Single commands already retry a dropped connection on a fresh one (``compute.storage.connection``,
redis-py's ``Retry``). What must not give up at all (a computed result waiting to be recorded, the
replica's subscription to job events) waits here: exponential backoff from 0.2 s to 5 s, with jitter
so that replicas and runners do not come back in lock-step, forever.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential_jitter

FIRST_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 5.0


def until_redis_answers(log: logging.Logger, what: str) -> AsyncRetrying:
    """``async for attempt in until_redis_answers(log, "..."): with attempt: ...`` retries the block
    on Redis errors (and socket errors from a pub/sub connection), logging each wait at WARNING."""

    def warn(state) -> None:
        log.warning("%s waits for Redis (%s); retry in %.1f s", what,
                    type(state.outcome.exception()).__name__, state.next_action.sleep)

    return AsyncRetrying(
        retry=retry_if_exception_type((RedisError, OSError)),
        wait=wait_exponential_jitter(multiplier=FIRST_DELAY_SECONDS, max=MAX_DELAY_SECONDS, jitter=FIRST_DELAY_SECONDS),
        stop=stop_never,
        before_sleep=warn,
        reraise=True,
    )
