"""Live updates: one Redis subscription per replica fans out to every stream; a user's stream of all
their jobs; chunk facts sent incrementally; deleted records; slow readers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid

import httpx
import orjson
import pytest
import redis

from compute.storage.events import JobEvent
from compute.storage.jobs import JobStore
from serve_app.live_events import RESYNC, EventHub
from serve_app.status_cache import StatusCache
from tests.support.clients import run_async
from tests.support.jobs import wait_for_job
from tests.support.sse import EventReader, read_until
from tests.support.stack import STACK_KEYS
from tests.support.storage import unique_prefix

TERMINAL = {"completed", "failed", "cancelled"}


def submit(api, headers, **body) -> str:
    response = api.post("/jobs", json={"n": 1000, "chunks": 4, **body}, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def another_user(api) -> dict:
    email = f"other-{uuid.uuid4().hex[:10]}@example.com"
    assert api.post("/auth/register", json={"email": email, "password": "another password"}).status_code == 201
    token = api.post("/auth/login", json={"email": email, "password": "another password"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def pubsub_connections(client: redis.Redis) -> list[dict]:
    return [c for c in client.client_list() if int(c.get("sub", 0)) or int(c.get("psub", 0))]


def wait_running(api, path: str, headers: dict, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while api.get(path, headers=headers).json()["status"] != "running":
        assert time.monotonic() < deadline, f"{path} did not start"
        time.sleep(0.05)


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def test_all_jobs_route_is_not_taken_for_a_job_id(api, user):
    """`/jobs/events` is its own route (declared before `/jobs/{job_id}`) and documented as SSE."""
    response = api.get("/jobs/events")
    assert response.status_code == 401 and response.json() == {"detail": "Not authenticated."}
    operation = api.get("/openapi.json").json()["paths"]["/v1/jobs/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {"401", "503"} <= set(operation["responses"]) and "Server-Sent Events" in operation["summary"]
    with api.stream("GET", "/jobs/events", headers=user["headers"]) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert read_until(stream, lambda name, _: name == "ready", timeout=10) == [("ready", {})]


def test_ten_streams_share_the_replicas_one_subscription(base_url, api, user, redis_client):
    """Opening 10 SSE streams (per-job and per-user) adds no Redis pub/sub connection: they are fed
    from the replica's one pattern subscription."""
    job_id = submit(api, user["headers"], kind="sleepy_sum", n=30_000, chunks=1)  # runs ~30 s
    try:
        wait_running(api, f"/jobs/{job_id}", user["headers"])
        assert redis_client.pubsub_numpat() >= 1  # the replicas' pattern subscriptions
        before = pubsub_connections(redis_client)
        opened, release = threading.Semaphore(0), threading.Event()

        def hold(path: str) -> None:
            with httpx.Client(base_url=base_url, headers=user["headers"], timeout=30) as client:
                with client.stream("GET", path) as stream:
                    assert stream.status_code == 200
                    read_until(stream, lambda name, _: name in ("ready", "progress"), timeout=30)
                    opened.release()
                    assert release.wait(60)

        paths = [f"/jobs/{job_id}/events"] * 5 + [f"/jobs/{job_id}/events?chunks=true"] * 2 + ["/jobs/events"] * 3
        with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
            holders = [pool.submit(hold, path) for path in paths]
            try:
                for _ in paths:
                    assert opened.acquire(timeout=60), [h.exception() for h in holders if h.done()]
                after = pubsub_connections(redis_client)
            finally:
                release.set()
            for holder in holders:
                holder.result()
        assert len(after) == len(before), (
            f"{len(after) - len(before)} pub/sub connection(s) added by 10 streams: "
            f"{[c.get('cmd') for c in after]}")
    finally:
        api.delete(f"/jobs/{job_id}", headers=user["headers"])


def test_chunk_events_carry_only_newly_finished_facts(api, user):
    # 8 chunks of ~1 s on 4 CPUs: two waves, each recorded by its own write.
    job_id = submit(api, user["headers"], kind="sleepy_sum", n=8_000, chunks=8)
    with api.stream("GET", f"/jobs/{job_id}/events", params={"chunks": "true"}, headers=user["headers"]) as stream:
        events = read_until(stream, lambda name, _: name == "done", timeout=90)
    assert "resync" not in [name for name, _ in events]
    updates = [data for name, data in events if name == "chunks"]
    assert len(updates) >= 2, f"all chunks came in one event: {events}"
    indices = [c["index"] for update in updates for c in update["chunks"]]
    assert sorted(indices) == list(range(8)), f"a chunk sent twice or never: {indices}"
    for update in updates:
        assert update["job_id"] == job_id
        for chunk in update["chunks"]:
            assert chunk["status"] == "completed" and chunk["node_id"] and chunk["worker_pid"]
            assert chunk["result"] == sum(range(chunk["start"], chunk["end"] + 1))
    # Every fact is sent before `done` (a progress event may be ahead: it is a fresh read of the
    # record, while the facts of the newest write are still on their way).
    assert events[-1][0] == "done" and events[-2][0] in ("chunks", "progress")
    assert events[-1][1]["status"] == "completed" and events[-1][1]["completed_chunks"] == 8
    # Without ?chunks=true the stream is as before: progress events, then done.
    with api.stream("GET", f"/jobs/{job_id}/events", headers=user["headers"]) as stream:
        assert [name for name, _ in read_until(stream, lambda name, _: name == "done", timeout=10)] == ["done"]


def test_my_stream_shows_all_my_jobs_and_never_another_users(api, user):
    mine, theirs = user["headers"], another_user(api)
    with api.stream("GET", "/jobs/events", headers=mine) as stream:
        reader = EventReader(stream)
        reader.until(lambda name, _: name == "ready", timeout=10)
        their_job = submit(api, theirs, kind="sleepy_sum", n=2_000, chunks=2)
        my_jobs = {submit(api, mine, kind="sleepy_sum", n=2_000, chunks=2) for _ in range(2)}
        done: set[str] = set()
        reader.until(lambda name, data: name == "done" and (done.add(data["job_id"]) or done == my_jobs), timeout=60)
    events = reader.seen
    assert wait_for_job(api, f"/jobs/{their_job}", headers=theirs)["status"] == "completed"
    assert {data["job_id"] for _, data in events[1:]} == my_jobs, events
    for job_id in my_jobs:
        states = [data["status"] for name, data in events[1:] if data["job_id"] == job_id]
        assert states[0] == "pending" and "running" in states and states[-1] == "completed", states
        final = [data for name, data in events if name == "done" and data["job_id"] == job_id]
        assert len(final) == 1 and final[0]["result"] == 2000 * 2001 // 2 and final[0]["progress"] == 1.0


def test_streams_handle_a_deleted_record(api, user, redis_client):
    """A record that disappears (TTL, eviction) ends its job's stream with `error` and is `removed`
    from the user's stream, even when no event announces it (the next heartbeat finds it)."""
    with api.stream("GET", "/jobs/events", headers=user["headers"]) as all_mine:
        mine = EventReader(all_mine)
        mine.until(lambda name, _: name == "ready", timeout=10)
        job_id = submit(api, user["headers"], kind="sleepy_sum", n=15_000, chunks=1)
        mine.until(lambda name, data: name == "progress" and data["status"] == "running", timeout=30)
        with api.stream("GET", f"/jobs/{job_id}/events", headers=user["headers"]) as just_one:
            one = EventReader(just_one)
            one.until(lambda name, data: name == "progress" and data["status"] == "running", timeout=30)
            assert redis_client.delete(STACK_KEYS.job(job_id)) == 1  # no event published
            removed = mine.until(lambda name, _: name == "removed", timeout=15)[-1]
            assert removed == ("removed", {"job_id": job_id, "detail": "Job not found."})
            assert one.until(lambda name, _: name == "error", timeout=15)[-1] == ("error", {"detail": "Job not found."})
            assert one.rest() == [], "the job's stream should end after `error`"
    assert api.get(f"/jobs/{job_id}/events", headers=user["headers"]).status_code == 404


def test_a_job_stream_sends_every_chunk_before_done_when_the_record_is_ahead(redis_url):
    """The record read after an event can already be final while the final write's event is still
    on its way: the facts it recorded must still be sent before ``done``."""
    from types import SimpleNamespace

    from compute.records import JobStatus
    from serve_app.job_streams import _one_job
    from tests.support.storage import fact, record

    async def scenario():
        ctx = SimpleNamespace(events=EventHub(StatusCache()), store=JobStore(redis_url, key_prefix=unique_prefix()))
        job = record("owner-x", chunks=8)
        await ctx.store.create_job(job)
        await ctx.store.mark_running(job.job_id)
        await ctx.store.record_chunks_done(job.job_id, [fact(i) for i in range(5)])
        stream = _one_job(ctx, job.job_id, job.owner, with_chunks=True)
        try:
            assert await stream.__anext__() == b"retry: 2000\n\n"
            assert (await stream.__anext__()).startswith(b"event: progress")  # now following the job
            ctx.events.dispatch(JobEvent(job.job_id, job.owner, "running", 5, tuple(range(5))))
            await ctx.store.finish(job, JobStatus.completed, result=8, facts=[fact(i) for i in range(5, 8)])
            # (the hub is not connected to Redis: the finish event never arrives, as if still on its way)
            sent = [item async for item in stream]
        finally:
            await ctx.store.close()
        names = [item.split(b"\n", 1)[0] for item in sent]
        assert names == [b"event: chunks", b"event: chunks", b"event: done"], sent
        indices = [c["index"] for item in sent[:2] for c in orjson.loads(item.split(b"data: ", 1)[1])["chunks"]]
        assert indices == list(range(8))

    run_async(scenario)


def test_a_slow_reader_loses_events_for_a_resync_not_memory():
    async def scenario():
        hub = EventHub(StatusCache(), queue_size=4)
        with hub.follow_job("j") as slow, hub.follow_owner("o") as owner:
            for i in range(10):
                hub.dispatch(JobEvent("j", "o", "running", i, (i,)))
            # 0-3 fill the queue; 4 drops them for RESYNC; 5-7 fill it; 8 drops them; 9 is kept.
            batch = await slow.next_batch(0.1)
            assert batch[0] is RESYNC and [e.completed_chunks for e in batch[1:]] == [9]
            assert slow.dropped == 7 and await owner.next_batch(0.1) == batch
            hub.dispatch(JobEvent("j", "o", "running", 10, ()))
            assert [e.completed_chunks for e in await slow.next_batch(0.1)] == [10]
            assert await slow.next_batch(0.05) == []
        assert hub.subscriber_count() == 0

    run_async(scenario)


def test_hub_feeds_the_status_cache_and_subscribers_from_one_pattern_subscription(redis_url, redis_client):
    """The hub on its own against the real Redis: one psubscribe connection, events routed by job
    and by owner, the status cache told of every change, malformed messages still naming the job."""
    async def scenario():
        store = JobStore(redis_url, key_prefix=unique_prefix())
        statuses = StatusCache()
        hub = EventHub(statuses)
        before = len(pubsub_connections(redis_client))
        runner = asyncio.create_task(hub.run(store))
        try:
            async with asyncio.timeout(10):
                while not hub.connected:
                    await asyncio.sleep(0.01)
            assert len(pubsub_connections(redis_client)) == before + 1
            job_a, job_b = str(uuid.uuid4()), str(uuid.uuid4())
            with hub.follow_job(job_a) as one, hub.follow_owner("alice") as alice, hub.follow_owner("bob") as bob:
                seen = statuses.mark()
                await store.redis.publish(store.keys.events(job_a), orjson.dumps(
                    {"job_id": job_a, "owner": "alice", "status": "running", "completed_chunks": 2, "chunks": [0, 1]}))
                await store.redis.publish(store.keys.events(job_b), b"not json")
                await store.redis.publish(store.keys.events(job_b), orjson.dumps({"job_id": job_b, "owner": "bob"}))
                got_one = await one.next_batch(5)
                got_alice = await alice.next_batch(5)
                got_bob = []
                async with asyncio.timeout(5):
                    while len(got_bob) < 1:
                        got_bob += await bob.next_batch(5)
                assert got_one == got_alice == [JobEvent(job_a, "alice", "running", 2, (0, 1))]
                assert got_bob == [JobEvent(job_b, "bob", None, None, ())]
                async with asyncio.timeout(5):
                    while statuses.mark() < seen + 3:
                        await asyncio.sleep(0.01)
        finally:
            runner.cancel()
            await store.close()

    run_async(scenario)
