"""JobStore's scripts against the session's real redis-server (no Ray): the active-job limit, the
per-status indexes, and the change events every write publishes."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson

from compute.records import ChunkFact, JobRecord, JobStatus
from compute.store import JobStore, events_channel


def record(owner: str, chunks: int = 2) -> JobRecord:
    return JobRecord(job_id=str(uuid.uuid4()), owner=owner, kind="range_sum", n=10, chunks=chunks,
                     total_chunks=chunks, created_at=time.time())


def fact(i: int) -> ChunkFact:
    return ChunkFact(index=i, start=i, end=i + 1, status="completed", result=1)


def run(redis_url: str, scenario):
    async def main():
        store = JobStore(redis_url)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


def owner() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def test_active_limit_is_atomic_and_freed_by_finishing(redis_url):
    me = owner()

    async def scenario(store):
        jobs = [record(me) for _ in range(3)]
        assert await store.create_job(jobs[0], max_active=2)
        assert await store.create_job(jobs[1], max_active=2)
        assert not await store.create_job(jobs[2], max_active=2)
        assert await store.get_job(jobs[2].job_id) is None  # refused: nothing written
        assert await store.finish(jobs[0], JobStatus.completed, result=1)
        assert await store.create_job(jobs[2], max_active=2)
        assert await store.owner_active_count(me) == 2

    run(redis_url, scenario)


def test_a_record_that_vanished_before_finishing_does_not_lock_its_owner_out(redis_url):
    """Counters (total - finished) would still count a job whose record expired or was evicted."""
    me = owner()

    async def scenario(store):
        jobs = [record(me) for _ in range(2)]
        for job in jobs:
            assert await store.create_job(job, max_active=2)
        await store.redis.delete(f"job:{jobs[0].job_id}")  # what a short TTL or eviction does
        assert await store.create_job(record(me), max_active=2)
        # finishing a job whose record is gone drops it from the active sets too
        await store.redis.delete(f"job:{jobs[1].job_id}")
        assert not await store.finish(jobs[1], JobStatus.failed, detail="gone")
        assert jobs[1].job_id not in await store.active_job_ids()
        assert await store.owner_active_count(me) == 1

    run(redis_url, scenario)


def test_status_indexes_follow_every_state_change(redis_url):
    me = owner()

    async def scenario(store):
        jobs = [record(me) for _ in range(5)]
        for job in jobs:
            await store.create_job(job)
        for job in jobs[:3]:
            started, _, _ = await store.start_job(job.job_id)
            assert started
        await store.finish(jobs[0], JobStatus.completed, result=2, facts=[fact(0), fact(1)])
        await store.finish(jobs[1], JobStatus.cancelled, detail="by test")
        pages = {s: await store.owner_job_ids_by_status(me, s, 0, 10) for s in JobStatus}
        assert pages[JobStatus.pending] == (2, [jobs[4].job_id, jobs[3].job_id])  # newest first
        assert pages[JobStatus.running] == (1, [jobs[2].job_id])
        assert pages[JobStatus.completed] == (1, [jobs[0].job_id])
        assert pages[JobStatus.cancelled] == (1, [jobs[1].job_id])
        assert pages[JobStatus.failed] == (0, [])
        assert await store.owner_job_ids_by_status(me, JobStatus.pending, 1, 1) == (2, [jobs[3].job_id])

    run(redis_url, scenario)


def test_demo_jobs_get_no_owner_indexes(redis_url):
    me = owner()

    async def scenario(store):
        job = record(me)
        await store.create_job(job, index_owner=False)
        await store.start_job(job.job_id)
        await store.finish(job, JobStatus.completed, result=1)
        assert await store.redis.keys(f"owner:{me}:*") == [f"owner:{me}:stats"]  # counters only

    run(redis_url, scenario)


def test_every_write_publishes_its_change(redis_url):
    """The replicas' status caches and live streams rely on this (compute/store.py's layout)."""
    me = owner()

    async def scenario(store):
        job = record(me, chunks=3)
        pubsub = store.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(events_channel(job.job_id))
        try:
            await store.create_job(job)
            await store.start_job(job.job_id)
            await store.record_chunks_done(job.job_id, [fact(0), fact(1)])
            await store.record_chunks_done(job.job_id, [fact(1)])  # nothing new: no write, no message
            await store.finish(job, JobStatus.completed, result=3, facts=[fact(2)])
            messages, deadline = [], time.monotonic() + 10
            while time.monotonic() < deadline and len(messages) < 5:  # a fifth would be one too many
                message = await pubsub.get_message(timeout=0.5 if len(messages) == 4 else 5)
                if message is None and len(messages) == 4:
                    break
                if message is not None:
                    messages.append(orjson.loads(message["data"]))
        finally:
            await pubsub.aclose()
        base = {"job_id": job.job_id, "owner": me}
        assert messages == [
            {**base, "status": "pending", "completed_chunks": 0},
            {**base, "status": "running", "completed_chunks": 0},
            {**base, "status": "running", "completed_chunks": 2, "chunks": [0, 1]},
            {**base, "status": "completed", "completed_chunks": 3, "chunks": [2]},
        ]

    run(redis_url, scenario)


def test_clients_reconnect_at_once_after_a_redis_restart(tmp_path):
    """Every pooled connection is stale after a restart: the first command on each must still
    succeed (retried on a fresh connection), for jobs and for the rate limiter alike."""
    from limits import parse
    from limits.aio.strategies import MovingWindowRateLimiter

    from cluster.redis_process import RedisProcess
    from compute.store import rate_limit_storage

    server = RedisProcess(tmp_path).start()

    async def scenario():
        store = JobStore(server.url)
        limiter = MovingWindowRateLimiter(rate_limit_storage(server.url))
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
        asyncio.run(scenario())
    finally:
        server.stop()
