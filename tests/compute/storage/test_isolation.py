"""Two services with different REDIS_KEY_PREFIX on one Redis do not see each other's jobs, users,
tokens, revocations, idempotency keys, rate limits or events."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from compute.records import JobStatus
from compute.storage.accounts import AccountStore
from compute.storage.events import all_job_events
from compute.storage.guards import IdempotencyKeys, rate_limit_storage
from compute.storage.jobs import JobStore
from tests.support.clients import run_async
from tests.support.storage import record, unique_prefix


class Service:
    """What one deployment builds from its settings (serve_app/context.py), for one prefix."""

    def __init__(self, redis_url: str, prefix: str):
        self.jobs = JobStore(redis_url, key_prefix=prefix)
        self.accounts = AccountStore(self.jobs.redis, key_prefix=prefix)
        self.idempotency = IdempotencyKeys(self.jobs.redis, 300, key_prefix=prefix)
        self.limiter = MovingWindowRateLimiter(rate_limit_storage(redis_url, key_prefix=prefix))


def prefixes():
    a, b, c = unique_prefix(), unique_prefix(), unique_prefix()
    # separate names; one namespace nested in the other; the unprefixed layout of earlier versions
    return [(a, b), (b + "outer:", b + "outer:inner:"), ("", c)]


@pytest.mark.parametrize("pair", prefixes(), ids=["apart", "nested", "legacy-vs-prefixed"])
def test_two_prefixes_on_one_redis_share_nothing(redis_url, pair):
    user_id, email, token_hash = f"u-{uuid.uuid4().hex[:8]}", f"{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
    limit, client = parse("1/minute"), f"client-{uuid.uuid4().hex[:8]}"

    async def scenario():
        one, two = Service(redis_url, pair[0]), Service(redis_url, pair[1])
        events_two = all_job_events(two.jobs.redis, two.jobs.keys, heartbeat=0.2)
        try:
            assert await events_two.__anext__() is None  # two listens to every job of its own
            stats_two = (await two.jobs.service_stats())["counters"]

            # jobs, their indexes, the active-job limit, counters and events
            job = record(user_id)
            assert await one.jobs.create_job(job, max_active=1)
            await one.jobs.mark_running(job.job_id)
            assert await two.jobs.get_job(job.job_id) is None
            assert await two.jobs.get_jobs([job.job_id]) == []
            assert job.job_id not in await two.jobs.active_job_ids()
            assert await two.jobs.owner_job_ids(user_id, 0, 10) == (0, [])
            assert await two.jobs.owner_active_count(user_id) == 0
            assert await two.jobs.create_job(record(user_id), max_active=1)  # not held back by one's job
            assert not await two.jobs.mark_running(job.job_id)  # two cannot move one's job
            assert await two.jobs.record_chunks_done(job.job_id, []) == 0
            counters = (await two.jobs.service_stats())["counters"]
            assert counters.get("total_jobs", 0) == stats_two.get("total_jobs", 0) + 1  # its own job only
            await two.jobs.redis.publish(two.jobs.keys.events("marker"), "{}")  # everything before it has arrived
            seen = []
            async with asyncio.timeout(5):
                while not seen or seen[-1] != "marker":
                    if (event := await events_two.__anext__()) is not None:
                        seen.append(event.job_id)
            assert job.job_id not in seen and len(seen) == 2  # two's own job, then the marker

            # users, tokens, revocations
            assert await one.accounts.create_user(email, "h1") is not None
            assert await two.accounts.get_user_by_email(email) is None
            created = await two.accounts.create_user(email, "h2")  # the same email registers again
            assert created is not None and created["password_hash"] == "h2"
            await one.accounts.create_api_token(user_id, "t", token_hash)
            assert await two.accounts.resolve_api_token(token_hash) is None
            assert await two.accounts.list_api_tokens(user_id) == []
            jti = uuid.uuid4().hex
            await one.accounts.revoke_jti(jti, time.time() + 60)
            assert await two.accounts.get_user_unless_revoked(created["user_id"], jti) is not None

            # idempotency keys and rate limits
            assert await one.idempotency.claim("user:x", "key", {"response": 1}) is None
            assert await two.idempotency.claim("user:x", "key", {"response": 2}) is None
            assert await one.limiter.hit(limit, "demo", client) and not await one.limiter.hit(limit, "demo", client)
            assert await two.limiter.hit(limit, "demo", client)

            # and one still has all of its own
            assert (await one.jobs.get_job(job.job_id)).status is JobStatus.running
            assert (await one.accounts.get_user_by_email(email))["password_hash"] == "h1"
            assert (await one.accounts.resolve_api_token(token_hash))["user_id"] == user_id
        finally:
            await events_two.aclose()
            await one.jobs.close()
            await two.jobs.close()

    run_async(scenario)
