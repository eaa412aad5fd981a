"""Each job script of compute/storage/job_scripts.py run directly against the real redis-server, with
the KEYS and ARGV its header documents: what it writes, what it returns, what it publishes, and
what it refuses to write."""

from __future__ import annotations

import time
import uuid

import pytest
import redis.asyncio as aioredis

from compute.storage import job_scripts
from compute.storage.keys import RedisKeys
from tests.support.clients import run_async
from tests.support.storage import EventLog, fact, owner, unique_prefix

TTL = 300


class Scripts:
    """The four scripts, called with their documented KEYS/ARGV, in a namespace of their own."""

    def __init__(self, client: aioredis.Redis):
        self.client = client
        self.keys = RedisKeys(unique_prefix())
        self.create_script = client.register_script(job_scripts.CREATE)
        self.mark_running_script = client.register_script(job_scripts.MARK_RUNNING)
        self.chunks_done_script = client.register_script(job_scripts.CHUNKS_DONE)
        self.finish_script = client.register_script(job_scripts.FINISH)

    async def create(self, job_id, who, *, created=None, index_owner=True, max_active=0):
        k = self.keys
        created = created if created is not None else time.time()
        fields = ["job_id", job_id, "owner", who, "kind", "range_sum", "status", "pending", "created_at", created,
                  "completed_chunks", 0, "started_at", ""]
        return await self.create_script(
            keys=[k.job(job_id), k.active_jobs, k.job_stats, k.owner_jobs(who), k.owner_stats(who),
                  k.owner_active(who), k.owner_status(who, "pending"), k.events(job_id), k.inputs(job_id)],
            args=[k.prefix, job_id, created, TTL, int(index_owner), max_active, who, '[{"start":1,"end":5}]', *fields])

    async def mark_running(self, job_id, started=None):
        k = self.keys
        return await self.mark_running_script(keys=[k.job(job_id), k.events(job_id)],
                                              args=[k.prefix, job_id, started or time.time(), TTL])

    async def chunks_done(self, job_id, *indices, second=1000):
        k = self.keys
        pairs = [x for i in indices for x in (i, fact(i).model_dump_json())]
        return await self.chunks_done_script(
            keys=[k.job(job_id), k.chunks(job_id), k.events(job_id), k.chunk_rate(second)],
            args=[job_id, TTL, *pairs])

    async def finish(self, job_id, who, status, result="", detail="", *indices, completed=None):
        k = self.keys
        pairs = [x for i in indices for x in (i, fact(i).model_dump_json())]
        return await self.finish_script(
            keys=[k.job(job_id), k.chunks(job_id), k.events(job_id), k.active_jobs, k.owner_stats(who),
                  k.job_stats, k.owner_active(who)],
            args=[k.prefix, job_id, status, result, detail, completed or time.time(), TTL, *pairs])

    async def status_index(self, who, status) -> list[str]:
        return await self.client.zrange(self.keys.owner_status(who, status), 0, -1)


def run(redis_url, scenario):
    async def main():
        client = aioredis.from_url(redis_url, decode_responses=True)
        scripts = Scripts(client)
        try:
            async with EventLog(client, scripts.keys) as events:
                await scenario(scripts, client, events)
        finally:
            await client.aclose()

    run_async(main)


def new_id() -> str:
    return str(uuid.uuid4())


# -- CREATE ------------------------------------------------------------------------------------


def test_create_stores_the_record_its_indexes_and_counters_and_publishes_pending(redis_url):
    me, job = owner(), new_id()

    async def scenario(s, client, events):
        k = s.keys
        assert await s.create(job, me, created=1234.5) == 1
        record = await client.hgetall(k.job(job))
        assert record["status"] == "pending" and record["owner"] == me and record["started_at"] == ""
        assert 0 < await client.ttl(k.job(job)) <= TTL
        assert await client.get(k.inputs(job)) == '[{"start":1,"end":5}]' and 0 < await client.ttl(k.inputs(job)) <= TTL
        assert await client.zrange(k.active_jobs, 0, -1, withscores=True) == [(job, 1234.5)]
        assert await client.zrange(k.owner_jobs(me), 0, -1) == [job]
        assert await client.smembers(k.owner_active(me)) == {job}
        assert await s.status_index(me, "pending") == [job]
        assert 0 < await client.ttl(k.owner_status(me, "pending")) <= TTL
        assert await client.hgetall(k.owner_stats(me)) == {"total_jobs": "1"}
        assert await client.hgetall(k.job_stats) == {"total_jobs": "1", "submitted:range_sum": "1"}
        assert await events.drain() == [(job, {"job_id": job, "owner": me, "status": "pending",
                                               "completed_chunks": 0})]

    run(redis_url, scenario)


def test_create_without_owner_index_writes_no_owner_keys(redis_url):
    """Demo jobs: the record, the recovery index and the service counter only."""
    me, job = owner(), new_id()

    async def scenario(s, client, events):
        assert await s.create(job, me, index_owner=False, max_active=0) == 1
        assert set(await client.keys(s.keys.prefix + "*")) == {s.keys.job(job), s.keys.inputs(job),
                                                               s.keys.active_jobs, s.keys.job_stats}
        assert [e["status"] for _, e in await events.drain()] == ["pending"]

    run(redis_url, scenario)


def test_create_refuses_at_the_active_limit_and_writes_nothing(redis_url):
    me = owner()

    async def scenario(s, client, events):
        first, second, third = new_id(), new_id(), new_id()
        assert await s.create(first, me, max_active=2) == 1
        assert await s.create(second, me, max_active=2) == 1
        await events.drain()
        assert await s.create(third, me, max_active=2) == 0
        assert not await client.exists(s.keys.job(third))
        assert await client.smembers(s.keys.owner_active(me)) == {first, second}
        assert await client.hget(s.keys.owner_stats(me), "total_jobs") == "2"
        assert await events.drain() == []
        assert await s.create(third, me, max_active=0) == 1  # '0': no limit

    run(redis_url, scenario)


def test_create_drops_vanished_ids_from_the_owners_active_set(redis_url):
    """A record gone before its job finished (TTL, eviction) must not count against the limit."""
    me = owner()

    async def scenario(s, client, events):
        first, second, third = new_id(), new_id(), new_id()
        assert await s.create(first, me, max_active=2) == 1
        assert await s.create(second, me, max_active=2) == 1
        await client.delete(s.keys.job(first))
        assert await s.create(third, me, max_active=2) == 1
        assert await client.smembers(s.keys.owner_active(me)) == {second, third}

    run(redis_url, scenario)


# -- MARK_RUNNING ------------------------------------------------------------------------------


def test_mark_running_moves_a_pending_job_once(redis_url):
    me, job = owner(), new_id()

    async def scenario(s, client, events):
        await s.create(job, me)
        await events.drain()
        assert await s.mark_running(job, started=2000.25) == 1
        assert await client.hmget(s.keys.job(job), "status", "started_at") == ["running", "2000.25"]
        assert await s.status_index(me, "pending") == [] and await s.status_index(me, "running") == [job]
        assert await events.drain() == [(job, {"job_id": job, "owner": me, "status": "running",
                                               "completed_chunks": 0})]
        assert await s.mark_running(job, started=3000) == 0  # already running: nothing written
        assert await client.hget(s.keys.job(job), "started_at") == "2000.25"
        missing = new_id()
        assert await s.mark_running(missing) == 0
        assert not await client.exists(s.keys.job(missing))  # no record conjured up
        assert await events.drain() == []

    run(redis_url, scenario)


# -- CHUNKS_DONE -------------------------------------------------------------------------------


def test_chunks_done_records_each_index_once(redis_url):
    me, job = owner(), new_id()

    async def scenario(s, client, events):
        await s.create(job, me)
        await s.mark_running(job)
        await events.drain()
        assert await s.chunks_done(job, 0, 1, second=4242) == 2
        assert await s.chunks_done(job, 1, 2, second=4242) == 3  # 1 again: counted once
        assert await s.chunks_done(job, 2) == 0  # nothing new: no write
        assert sorted(await client.hkeys(s.keys.chunks(job))) == ["0", "1", "2"]
        assert await client.hget(s.keys.job(job), "completed_chunks") == "3"
        assert await client.get(s.keys.chunk_rate(4242)) == "3"
        assert 0 < await client.ttl(s.keys.chunk_rate(4242)) <= 120
        assert await events.drain() == [
            (job, {"job_id": job, "owner": me, "status": "running", "completed_chunks": 2, "chunks": [0, 1]}),
            (job, {"job_id": job, "owner": me, "status": "running", "completed_chunks": 3, "chunks": [2]}),
        ]

    run(redis_url, scenario)


def test_chunks_done_never_reopens_a_finished_or_missing_job(redis_url):
    me, job = owner(), new_id()

    async def scenario(s, client, events):
        await s.create(job, me)
        assert await s.chunks_done(job, 0) == 1  # a pending job takes chunks too
        assert await s.finish(job, me, "cancelled", "", "by test") == 1
        await events.drain()
        assert await s.chunks_done(job, 1) == 0
        assert await client.hkeys(s.keys.chunks(job)) == ["0"]
        assert await client.hmget(s.keys.job(job), "status", "completed_chunks") == ["cancelled", "1"]
        missing = new_id()
        assert await s.chunks_done(missing, 0) == 0
        assert not await client.exists(s.keys.job(missing), s.keys.chunks(missing))
        assert await events.drain() == []

    run(redis_url, scenario)


# -- FINISH ------------------------------------------------------------------------------------


def test_finish_records_the_result_counters_and_indexes_once(redis_url):
    me, job = owner(), new_id()

    async def scenario(s, client, events):
        await s.create(job, me)
        await s.mark_running(job, started=100.0)
        await s.chunks_done(job, 0)
        await events.drain()
        assert await s.finish(job, me, "completed", "12345678901234567890123", "", 1, completed=101.5) == 1
        record = await client.hgetall(s.keys.job(job))
        assert {f: record[f] for f in ("status", "result", "detail", "completed_at", "completed_chunks")} == {
            "status": "completed", "result": "12345678901234567890123", "detail": "", "completed_at": "101.5",
            "completed_chunks": "2"}
        assert await client.zscore(s.keys.active_jobs, job) is None
        assert await client.smembers(s.keys.owner_active(me)) == set()
        assert await s.status_index(me, "running") == [] and await s.status_index(me, "completed") == [job]
        assert await client.hgetall(s.keys.owner_stats(me)) == {"total_jobs": "1", "completed": "1",
                                                                 "duration_ms_sum": "1500"}
        assert await client.hget(s.keys.job_stats, "completed") == "1"
        assert await client.hget(s.keys.job_stats, "finished:range_sum:completed") == "1"
        assert await events.drain() == [(job, {"job_id": job, "owner": me, "status": "completed",
                                               "completed_chunks": 2, "chunks": [1]})]
        # once: a second finish (any status) changes nothing and counts nothing
        assert await s.finish(job, me, "failed", "", "late") == 0
        assert await client.hget(s.keys.job(job), "status") == "completed"
        assert await client.hgetall(s.keys.owner_stats(me)) == {"total_jobs": "1", "completed": "1",
                                                                 "duration_ms_sum": "1500"}
        assert await events.drain() == []

    run(redis_url, scenario)


def test_finish_of_a_never_started_job_sets_its_start(redis_url):
    me, job = owner(), new_id()

    async def scenario(s, client, events):
        await s.create(job, me)
        assert await s.finish(job, me, "failed", "", "refused", completed=555.0) == 1
        assert await client.hmget(s.keys.job(job), "started_at", "status") == ["555.0", "failed"]
        assert await s.status_index(me, "pending") == [] and await s.status_index(me, "failed") == [job]
        assert "duration_ms_sum" not in await client.hgetall(s.keys.owner_stats(me))  # completed only

    run(redis_url, scenario)


@pytest.mark.parametrize("indexed", [True, False])
def test_finish_of_a_vanished_record_drops_it_from_the_active_sets(redis_url, indexed):
    me, job = owner(), new_id()

    async def scenario(s, client, events):
        await s.create(job, me, index_owner=indexed)
        await client.delete(s.keys.job(job))
        await events.drain()
        assert await s.finish(job, me, "failed", "", "gone") == -1
        assert await client.zscore(s.keys.active_jobs, job) is None
        assert not await client.sismember(s.keys.owner_active(me), job)
        assert not await client.exists(s.keys.job(job))  # not recreated
        assert await client.hget(s.keys.job_stats, "failed") is None  # not counted
        assert await events.drain() == []

    run(redis_url, scenario)

