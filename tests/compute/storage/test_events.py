"""Reading change events (compute/storage/events.py) from real JobStore writes."""

from __future__ import annotations

from compute.records import JobStatus
from compute.storage.events import JobEvent, all_job_events, job_events, parse_event
from compute.storage.jobs import JobStore
from compute.storage.keys import RedisKeys
from tests.support.clients import run_async
from tests.support.storage import fact, owner, record, take, unique_prefix


def test_parse_event_names_the_job_from_the_channel_even_for_a_bad_body():
    keys = RedisKeys("svc:")
    assert parse_event(keys, "svc:job-events:j1", b'{"owner": "o", "status": "running", "completed_chunks": 2, '
                                                  b'"chunks": [0, 1]}') == JobEvent("j1", "o", "running", 2, (0, 1))
    assert parse_event(keys, "svc:job-events:j2", "not json") == JobEvent("j2", None, None, None, ())
    assert parse_event(keys, "svc:job-events:j3", '{"chunks": {}, "completed_chunks": true}').chunks == ()  # cjson's {}
    assert parse_event(keys, "svc:job-events:j3", '{"completed_chunks": true}').completed_chunks is None


def test_all_job_events_follows_every_job_of_the_namespace(redis_url):
    me = owner()

    async def scenario():
        store = JobStore(redis_url, key_prefix=unique_prefix())
        neighbour = JobStore(redis_url, key_prefix=store.keys.prefix + "n:")  # a namespace inside ours
        events = all_job_events(store.redis, store.keys, heartbeat=0.2)
        try:
            assert await events.__anext__() is None  # subscribed
            a, b, theirs = record(me), record(me), record(me)
            await neighbour.create_job(theirs)
            await store.create_job(a)
            await store.create_job(b, index_owner=False)
            await store.mark_running(a.job_id)
            await store.record_chunks_done(a.job_id, [fact(0)])
            assert await take(events, 4) == [  # the neighbour's job, created first, is not among them
                JobEvent(a.job_id, me, "pending", 0, ()), JobEvent(b.job_id, me, "pending", 0, ()),
                JobEvent(a.job_id, me, "running", 0, ()), JobEvent(a.job_id, me, "running", 1, (0,))]
            assert await events.__anext__() is None  # silence: a heartbeat, not the neighbour's job
        finally:
            await events.aclose()
            await neighbour.close()
            await store.close()

    run_async(scenario)


def test_job_events_follows_one_job(redis_url):
    me = owner()

    async def scenario():
        store = JobStore(redis_url, key_prefix=unique_prefix())
        mine, other = record(me), record(me)
        events = job_events(store.redis, store.keys, mine.job_id, heartbeat=0.2)
        try:
            assert await events.__anext__() is None
            await store.create_job(other)
            await store.create_job(mine)
            await store.finish(mine, JobStatus.failed, detail="x")
            bodies = await take(events, 2)
            assert [(b["job_id"], b["status"]) for b in bodies] == [(mine.job_id, "pending"), (mine.job_id, "failed")]
        finally:
            await events.aclose()
            await store.close()

    run_async(scenario)
