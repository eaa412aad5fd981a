"""JobStore against a real redis-server (no Ray): the active-job limit, the per-status indexes, and
THE RULE of compute/storage/jobs.py, checked for every public method it has: a write that changes a
job record publishes exactly one change event, and nothing else publishes or writes unasked."""

from __future__ import annotations

import inspect

import pytest

from cluster.redis_process import RedisProcess
from compute.records import JobStatus
from compute.storage.jobs import JobStore
from tests.support.clients import run_async
from tests.support.storage import EventLog, fact, owner, record, unique_prefix, writes


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
            started = await store.mark_running(job.job_id)
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
        await store.mark_running(job.job_id)
        await store.finish(job, JobStatus.completed, result=1)
        owner_keys = await store.redis.keys(store.keys.owner_jobs(me).removesuffix("jobs") + "*")
        assert owner_keys == [store.keys.owner_stats(me)]  # counters only

    run(redis_url, scenario)


# -- THE RULE ----------------------------------------------------------------------------------
# Every public method of JobStore, by what it does to job records. A method not listed here fails
# test_every_public_method_is_classified: decide what it is, and give it a call below.

RECORD_WRITES = {"create_job", "mark_running", "show_queue_place", "record_chunks_done", "finish"}
INDEX_CLEANUP = {"forget_active", "forget_from_status_index", "remember_result"}  # writes that change no record
READS = {"get_job", "get_jobs", "get_chunk_facts", "get_chunk_facts_for", "active_job_ids", "owner_job_ids",
         "owner_job_ids_by_status", "owner_active_count", "owner_stats", "service_stats", "ping", "cached_result",
         "existing_job_ids", "get_chunk_inputs", "get_chunk_progress", "load_job"}
LIFECYCLE = {"close"}


def public_methods() -> set[str]:
    return {name for name, member in inspect.getmembers(JobStore, callable) if not name.startswith("_")}


def test_every_public_method_is_classified():
    listed = RECORD_WRITES | INDEX_CLEANUP | READS | LIFECYCLE
    unknown, gone = public_methods() - listed, listed - public_methods()
    assert not unknown, (f"new JobStore method(s) {sorted(unknown)}: if one changes a job record it must "
                         "publish its change event (jobs.py's rule); list it in RECORD_WRITES (and WRITE_CALLS), "
                         "INDEX_CLEANUP or READS")
    assert not gone, f"listed but no longer on JobStore: {sorted(gone)}"
    assert set(WRITE_CALLS) == RECORD_WRITES and set(OTHER_CALLS) == INDEX_CLEANUP | READS


# Each record write: (where the job must be for the write to apply, the write, the status after it,
# the chunk indices its event must name). The write then runs a second time, where it must change
# nothing. ``bring_to`` "running" has chunk 0 recorded.
WRITE_CALLS = {
    "create_job": (None, lambda s, job: s.create_job(job), "pending", None),
    "mark_running": ("pending", lambda s, job: s.mark_running(job.job_id), "running", None),
    "show_queue_place": ("pending", lambda s, job: s.show_queue_place(job.job_id, 3, "Waiting."), "pending", None),
    "record_chunks_done": ("running", lambda s, job: s.record_chunks_done(job.job_id, [fact(1)]), "running", [1]),
    "finish": ("running", lambda s, job: s.finish(job, JobStatus.completed, result={"big": 2 ** 70}, facts=[fact(2)]),
               "completed", [2]),
}
OTHER_CALLS = {
    "forget_active": lambda s, job: s.forget_active(job.job_id),
    "forget_from_status_index": lambda s, job: s.forget_from_status_index(job.owner, JobStatus.running, [job.job_id]),
    "get_job": lambda s, job: s.get_job(job.job_id),
    "get_jobs": lambda s, job: s.get_jobs([job.job_id]),
    "get_chunk_facts": lambda s, job: s.get_chunk_facts(job.job_id),
    "get_chunk_facts_for": lambda s, job: s.get_chunk_facts_for(job.job_id, [0, 1]),
    "active_job_ids": lambda s, job: s.active_job_ids(),
    "owner_job_ids": lambda s, job: s.owner_job_ids(job.owner, 0, 10),
    "owner_job_ids_by_status": lambda s, job: s.owner_job_ids_by_status(job.owner, JobStatus.running, 0, 10),
    "owner_active_count": lambda s, job: s.owner_active_count(job.owner),
    "owner_stats": lambda s, job: s.owner_stats(job.owner),
    "service_stats": lambda s, job: s.service_stats(),
    "ping": lambda s, job: s.ping(),
    "remember_result": lambda s, job: s.remember_result(job, "digest", 60),
    "cached_result": lambda s, job: s.cached_result(job.owner, "digest"),
    "existing_job_ids": lambda s, job: s.existing_job_ids([job.job_id, "gone"]),
    "get_chunk_inputs": lambda s, job: s.get_chunk_inputs(job.job_id),
    "get_chunk_progress": lambda s, job: s.get_chunk_progress(job.job_id),
    "load_job": lambda s, job: s.load_job(job.job_id),
}


async def bring_to(store: JobStore, job, state) -> None:
    if state is None:
        return
    await store.create_job(job)
    if state == "running":
        await store.mark_running(job.job_id)
        await store.record_chunks_done(job.job_id, [fact(0)])


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    """A Redis of this module's own: its write counter tells whether a call wrote."""
    server = RedisProcess(tmp_path_factory.mktemp("rule-redis"), appendonly=False).start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("name", sorted(WRITE_CALLS))
def test_every_record_write_publishes_exactly_one_event(private_redis, name):
    before_state, call, status_after, chunks = WRITE_CALLS[name]

    async def scenario(store):
        job = record(owner(), chunks=3)
        async with EventLog(store.redis, store.keys) as events:
            await bring_to(store, job, before_state)
            await events.drain()
            written = await writes(store.redis)
            await call(store, job)
            assert await writes(store.redis) > written
            published = await events.drain()
            stored = await store.get_job(job.job_id)
            assert len(published) == 1, f"{name} published {len(published)} events: {published}"
            channel_job, event = published[0]
            assert channel_job == job.job_id
            assert set(event) - {"chunks"} == {"job_id", "owner", "status", "completed_chunks"}
            assert event["job_id"] == job.job_id and event["owner"] == job.owner
            assert (event["status"], event["completed_chunks"]) == (stored.status.value, stored.completed_chunks)
            assert event["status"] == status_after
            assert event.get("chunks") == chunks  # the chunks this write recorded, if any
            # the same call again finds nothing to change: it writes nothing and publishes nothing
            written = await writes(store.redis)
            if name == "create_job":
                await store.create_job(job, max_active=1)  # refused: the owner is at 1
            else:
                await call(store, job)
            assert await writes(store.redis) == written and await events.drain() == []

    run(private_redis, scenario)


@pytest.mark.parametrize("name", sorted(OTHER_CALLS))
def test_other_methods_publish_nothing_and_reads_write_nothing(private_redis, name):
    async def scenario(store):
        job = record(owner(), chunks=3)
        async with EventLog(store.redis, store.keys) as events:
            await bring_to(store, job, "running")
            await events.drain()
            before = await store.get_job(job.job_id)
            written = await writes(store.redis)
            await OTHER_CALLS[name](store, job)
            if name in READS:
                assert await writes(store.redis) == written, f"{name} is listed as a read but wrote"
            else:
                assert await writes(store.redis) > written, f"{name} did not clean anything up"
            assert await events.drain() == []
            assert await store.get_job(job.job_id) == before

    run(private_redis, scenario)
