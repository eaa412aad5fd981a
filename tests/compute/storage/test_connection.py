"""The one connection policy (compute/storage/connection.py) against a Redis that restarts."""

from __future__ import annotations

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from cluster.redis_process import RedisProcess
from compute.storage.guards import rate_limit_storage
from compute.storage.jobs import JobStore
from tests.support.clients import run_async
from tests.support.storage import unique_prefix


def test_clients_reconnect_at_once_after_a_redis_restart(tmp_path):
    """Every pooled connection is stale after a restart: the first command on each must still
    succeed (retried on a fresh connection), for jobs and for the rate limiter alike."""
    server = RedisProcess(tmp_path, appendonly=False).start()
    prefix = unique_prefix()

    async def scenario():
        store = JobStore(server.url, key_prefix=prefix)
        limiter = MovingWindowRateLimiter(rate_limit_storage(server.url, key_prefix=prefix))
        item = parse("100/minute")
        try:
            assert await store.ping() and await limiter.hit(item, "t", "k")
            server.stop()
            server.start()
            assert await store.ping()
            assert await limiter.hit(item, "t", "k")
        finally:
            await store.close()

    try:
        run_async(scenario)
    finally:
        server.stop()
