"""JobStore against a real redis-server (no Ray): the active-job limit, the per-status indexes."""

from __future__ import annotations

from compute.records import JobStatus
from compute.storage.jobs import JobStore
from tests.support.clients import run_async
from tests.support.storage import fact, owner, record, unique_prefix


def run(redis_url: str, scenario):
    async def main():
        store = JobStore(redis_url, key_prefix=unique_prefix())
        try:
            return await scenario(store)
        finally:
            await store.close()

    return run_async(main)


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
        await store.redis.delete(store.keys.job(jobs[0].job_id))  # what a short TTL or eviction does
        assert await store.create_job(record(me), max_active=2)
        # finishing a job whose record is gone drops it from the active sets too
        await store.redis.delete(store.keys.job(jobs[1].job_id))
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
        assert await store.owner_job_ids(me, 0, 2) == (5, [jobs[4].job_id, jobs[3].job_id])

    run(redis_url, scenario)


def test_demo_jobs_get_no_owner_indexes(redis_url):
    me = owner()

    async def scenario(store):
        job = record(me)
        await store.create_job(job, index_owner=False)
        await store.start_job(job.job_id)
        await store.finish(job, JobStatus.completed, result=1)
        owner_keys = await store.redis.keys(store.keys.owner_jobs(me).removesuffix("jobs") + "*")
        assert owner_keys == [store.keys.owner_stats(me)]  # counters only

    run(redis_url, scenario)

