"""Job leases (compute/storage/leases.py) on a real Redis: one holder at a time, renewal, expiry,
loss when the record is finished elsewhere, and release."""

from __future__ import annotations

import asyncio

from compute.records import JobStatus
from compute.storage.jobs import JobStore
from compute.storage.leases import JobLeases
from tests.support.clients import run_async
from tests.support.storage import owner, record, unique_prefix


def test_one_holder_at_a_time_until_released_or_expired(redis_url):
    async def scenario():
        prefix = unique_prefix()
        store = JobStore(redis_url, key_prefix=prefix)
        one = JobLeases(redis_url, "runner-a", 1.0, key_prefix=prefix)
        two = JobLeases(redis_url, "runner-b", 1.0, key_prefix=prefix)
        try:
            job = record(owner())
            await store.create_job(job)
            assert await one.acquire(job.job_id)
            assert await one.acquire(job.job_id)  # its own lease again: renewed
            assert not await two.acquire(job.job_id)  # racing: refused
            assert await one.holder_of(job.job_id) == "runner-a"
            assert await one.renew([job.job_id]) == set() and await two.renew([job.job_id]) == {job.job_id}
            assert not await two.release(job.job_id)  # not its lease to give back
            assert await one.release(job.job_id)
            assert await two.acquire(job.job_id)  # given back: taken by the other
            await asyncio.sleep(1.3)  # not renewed: it expires (a runner that died)
            assert await one.holder_of(job.job_id) is None
            assert await one.acquire(job.job_id)
            assert await two.renew([job.job_id]) == {job.job_id}  # the old holder learns it lost it
            await asyncio.sleep(1.3)  # expired while its holder was starved, and nobody took it:
            assert await one.renew([job.job_id]) == set()  # its holder keeps it
            assert await one.holder_of(job.job_id) == "runner-a"
        finally:
            for client in (one, two):
                await client.close()
            await store.close()

    run_async(scenario)


def test_a_lease_is_lost_when_the_record_is_finished_elsewhere(redis_url):
    async def scenario():
        prefix = unique_prefix()
        store = JobStore(redis_url, key_prefix=prefix)
        leases = JobLeases(redis_url, "runner-a", 30.0, key_prefix=prefix)
        try:
            running, cancelled = record(owner()), record(owner())
            for job in (running, cancelled):
                await store.create_job(job)
                assert await leases.acquire(job.job_id)
            await store.finish(cancelled, JobStatus.cancelled, detail="Cancelled by the user.")
            assert await leases.renew([running.job_id, cancelled.job_id]) == {cancelled.job_id}
            assert await leases.renew(["never-created"]) == {"never-created"}
            assert await leases.renew([]) == set()
        finally:
            await leases.close()
            await store.close()

    run_async(scenario)
