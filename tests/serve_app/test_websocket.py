"""WebSocket progress (``WS /ws/{job_id}``, ``WS /ws/demo/{job_id}``, and under ``/v1``) with a real
client (websockets).

Through the session's stack (HAProxy in front of two replicas, Ray running the jobs): message order,
both paths, JWT and API token, refusals, ping. In-process (the app under uvicorn on a real Redis, no
Ray; the fast tier): the job's records written by hand, to check each message against each write,
heartbeats with a short interval, a vanished record, cookie and origin rules, and that every socket
releases its subscription of the replica's event hub.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from contextlib import asynccontextmanager

import pytest
import uvicorn
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from cluster.ports import free_port
from cluster.redis_process import RedisProcess
from compute.config import JobLimits
from compute.records import ChunkFact, JobStatus
from compute.submission import JobRequest, prepare
from serve_app.app import create_app
from serve_app.auth import SESSION_COOKIE
from serve_app.context import AppContext
from serve_app.security import create_access_token
from serve_app.settings import Settings
from tests.serve_app.test_live_events import another_user, pubsub_connections, submit
from tests.support.clients import run_async

NOT_AUTHENTICATED, NOT_FOUND = "Not authenticated.", "Job not found."


def ws_url(base_url: str, path: str) -> str:
    return "ws" + base_url.removeprefix("http") + path


def converse(url: str, timeout: float = 60, **kwargs) -> tuple[list, int, str]:
    """Every message until the server closes (JSON decoded), and the close code and reason."""
    messages = []
    with connect(url, open_timeout=10, **kwargs) as socket:
        try:
            while True:
                messages.append(json.loads(socket.recv(timeout=timeout)))
        except ConnectionClosed:
            pass
        return messages, socket.close_code, socket.close_reason


def assert_follows_to_the_end(messages: list, job_id: str, final: dict) -> None:
    """connected, progress per change (status and completed_chunks only move forward), done = final."""
    assert messages[0] == {"type": "connected", "job_id": job_id}
    assert [m["type"] for m in messages[1:]] == ["progress"] * (len(messages) - 2) + ["done"], messages
    order = [s.value for s in JobStatus]
    states = [(order.index(m["job"]["status"]), m["job"]["completed_chunks"]) for m in messages[1:]]
    assert states == sorted(states) and len(set(states)) == len(states), f"not one message per change: {states}"
    assert messages[-1]["job"] == final


# -- through the session's stack (HAProxy, two replicas, Ray) -----------------------------------

def test_a_demo_job_from_connected_to_done_on_both_paths(api, base_url):
    for prefix in ("/v1", ""):
        job_id = api.post("/jobs/demo", json={"n": 3000, "chunks": 3, "kind": "sleepy_sum"}).json()["job_id"]
        messages, code, reason = converse(ws_url(base_url, f"{prefix}/ws/demo/{job_id}"))
        assert (code, reason) == (1000, "Job finished.")
        final = api.get(f"{prefix}/jobs/demo/{job_id}").json()
        assert final["status"] == "completed" and final["result"] == 3000 * 3001 // 2
        assert_follows_to_the_end(messages, job_id, final)
        assert len(messages) >= 3, f"no progress while it ran: {messages}"


def test_a_users_job_with_a_jwt_and_with_an_api_token(api, base_url, user, redis_client):
    created = api.post("/me/tokens", json={"name": "ws"}, headers=user["headers"])
    assert created.status_code == 201, created.text
    tokens = {"jwt": user["headers"]["Authorization"].removeprefix("Bearer "), "api": created.json()["token"]}
    assert tokens["api"].startswith("rjt_")
    subscriptions = len(pubsub_connections(redis_client))
    for (name, token), prefix in zip(tokens.items(), ("", "/v1")):
        job_id = submit(api, user["headers"], kind="sleepy_sum", n=3000, chunks=3)
        messages, code, _ = converse(ws_url(base_url, f"{prefix}/ws/{job_id}?token={token}"))
        assert code == 1000, name
        assert_follows_to_the_end(messages, job_id, api.get(f"/jobs/{job_id}", headers=user["headers"]).json())
        assert messages[-1]["job"]["result"] == 3000 * 3001 // 2
    assert len(pubsub_connections(redis_client)) == subscriptions, "a socket opened a pub/sub connection"


def test_refusals_close_with_1008_and_a_reason(api, base_url, user):
    job_id = submit(api, user["headers"], n=100, chunks=1)
    token = user["headers"]["Authorization"].removeprefix("Bearer ")
    theirs = submit(api, another_user(api), n=100, chunks=1)
    refused = {
        f"/ws/{job_id}": NOT_AUTHENTICATED,  # no token
        f"/v1/ws/{job_id}?token=": NOT_AUTHENTICATED,
        f"/ws/{job_id}?token=not-a-token": NOT_AUTHENTICATED,
        f"/ws/{job_id}?token=rjt_{'x' * 43}": NOT_AUTHENTICATED,  # shaped like an API token, unknown
        f"/ws/{job_id}?token={token[:-2]}": NOT_AUTHENTICATED,  # tampered JWT
        f"/ws/{uuid.uuid4()}?token={token}": NOT_FOUND,
        f"/v1/ws/{theirs}?token={token}": NOT_FOUND,  # another user's job: told apart from no job by nothing
        f"/ws/not-a-job-id?token={token}": NOT_FOUND,
        f"/ws/demo/{job_id}": NOT_FOUND,  # a user's job is no demo job
        f"/v1/ws/demo/{uuid.uuid4()}": NOT_FOUND,
    }
    for path, reason in refused.items():
        assert converse(ws_url(base_url, path), timeout=10) == ([], 1008, reason), path
    # the same token is fine for the user's own job
    assert converse(ws_url(base_url, f"/ws/{job_id}?token={token}"))[1] == 1000


def test_ping_is_answered_and_other_messages_ignored(api, base_url):
    job_id = api.post("/jobs/demo", json={"n": 4000, "chunks": 1, "kind": "sleepy_sum"}).json()["job_id"]
    with connect(ws_url(base_url, f"/v1/ws/demo/{job_id}"), open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=10)) == {"type": "connected", "job_id": job_id}
        socket.send("hello")
        socket.send(b"ping")  # binary: not the text ping
        socket.send("ping")
        seen = []
        while (message := socket.recv(timeout=10)) != "pong":
            seen.append(json.loads(message)["type"])
        assert set(seen) <= {"progress"}, seen
        socket.send("ping")
        while (message := socket.recv(timeout=10)) != "pong":
            assert json.loads(message)["type"] == "progress"


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


# -- in-process: the app under uvicorn on a real Redis, no Ray (fast tier) ----------------------

SECRET = "websocket-secret-" + "w" * 32
APP_HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp("ws-redis")).start()
    yield server
    server.stop()


@asynccontextmanager
async def serving(redis_url: str, **env: str):
    """The app under uvicorn (what a replica runs) with its event hub listening; yields (ws base, ctx)."""
    settings = Settings(REDIS_URL=redis_url, JWT_SECRET=SECRET, ENVIRONMENT="test", **env)
    app = create_app(settings)
    ctx = AppContext.create(settings)  # what the lifespan builds, without the runner (no Ray here)
    app.state.ctx = ctx
    listener = asyncio.create_task(ctx.events.run(ctx.store))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=APP_HOST, port=port, lifespan="off", log_level="warning"))
    running = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not (server.started and ctx.events.connected):
                await asyncio.sleep(0.01)
        yield f"ws://{APP_HOST}:{port}", ctx
    finally:
        server.should_exit = True
        await running
        listener.cancel()
        await ctx.close()


async def new_job(ctx: AppContext, owner: str, chunks: int = 2):
    record = prepare(owner, JobRequest("range_sum", {"n": 100}, chunks), JobLimits(100, 8)).record
    assert await ctx.store.create_job(record)
    return record


async def new_user(ctx: AppContext) -> tuple[str, str]:
    """A user id and a JWT for it."""
    user = await ctx.accounts.create_user(f"ws-{uuid.uuid4().hex[:8]}@example.com", "x")
    return user["user_id"], create_access_token(ctx.settings, user["user_id"])[0]


async def receive(socket, timeout: float = 5):
    async with asyncio.timeout(timeout):
        message = await socket.recv()
    return message if message == "pong" else json.loads(message)


async def until_released(ctx: AppContext, count: int) -> None:
    async with asyncio.timeout(5):
        while ctx.events.subscriber_count() != count:
            await asyncio.sleep(0.01)


def run(coroutine_function):
    run_async(coroutine_function)


def test_one_message_per_write_then_done_and_the_subscription_is_released(own_redis):
    async def scenario():
        async with serving(own_redis.url) as (base, ctx):
            owner, token = await new_user(ctx)
            record = await new_job(ctx, owner)
            before = ctx.events.subscriber_count()
            async with connect_async(f"{base}/ws/{record.job_id}?token={token}") as socket:
                assert await receive(socket) == {"type": "connected", "job_id": record.job_id}
                assert (await receive(socket))["job"]["status"] == "pending"
                assert ctx.events.subscriber_count() == before + 1
                await ctx.store.mark_running(record.job_id)
                assert (await receive(socket))["job"]["status"] == "running"
                await ctx.store.record_chunks_done(record.job_id, [ChunkFact(index=0, start=1, end=50, status="completed",
                                                                            result=1275)])
                progress = await receive(socket)
                assert progress["type"] == "progress" and progress["job"]["completed_chunks"] == 1
                assert progress["job"]["progress"] == 0.5
                await ctx.store.finish(record, JobStatus.completed, result=5050)
                done = await receive(socket)
                assert done["type"] == "done" and done["job"]["result"] == 5050
                assert done["job"]["status"] == "completed"
                with pytest.raises(ConnectionClosed):
                    await receive(socket)
                assert (socket.close_code, socket.close_reason) == (1000, "Job finished.")
            await until_released(ctx, before)

    run(scenario)


def test_heartbeats_on_silence_pings_answered_and_a_client_that_leaves_releases_its_subscription(own_redis):
    async def scenario():
        async with serving(own_redis.url, WS_HEARTBEAT_SECONDS="0.2") as (base, ctx):
            record = await new_job(ctx, "demo")
            before = ctx.events.subscriber_count()
            async with connect_async(f"{base}/v1/ws/demo/{record.job_id}") as socket:
                assert (await receive(socket))["type"] == "connected"
                assert (await receive(socket))["type"] == "progress"
                beats = [await receive(socket, timeout=5) for _ in range(3)]
                assert [b["type"] for b in beats] == ["heartbeat"] * 3
                times = [b["timestamp"] for b in beats]
                assert times == sorted(times) and abs(times[0] - time.time()) < 5
                assert all(0.1 < later - earlier < 3 for earlier, later in itertools.pairwise(times)), times
                await socket.send("something else")
                await socket.send("ping")
                while (message := await receive(socket)) != "pong":
                    assert message["type"] == "heartbeat"
                assert ctx.events.subscriber_count() == before + 1
            await until_released(ctx, before)  # the client closed: the server let go of the job

    run(scenario)


def test_a_vanished_record_is_an_error_then_close_1011(own_redis):
    """Found by the next look after silence, as a lost event would be."""

    async def scenario():
        async with serving(own_redis.url, WS_HEARTBEAT_SECONDS="0.2") as (base, ctx):
            record = await new_job(ctx, "demo")
            async with connect_async(f"{base}/ws/demo/{record.job_id}") as socket:
                assert (await receive(socket))["type"] == "connected"
                assert (await receive(socket))["type"] == "progress"
                await ctx.store.redis.delete(ctx.store.keys.job(record.job_id))  # TTL, eviction: no event tells
                for _ in range(25):  # a few heartbeats' time at most
                    if (message := await receive(socket))["type"] != "heartbeat":
                        break
                assert message == {"type": "error", "detail": NOT_FOUND}
                with pytest.raises(ConnectionClosed):
                    await receive(socket)
                assert (socket.close_code, socket.close_reason) == (1011, NOT_FOUND)
            await until_released(ctx, 0)

    run(scenario)


def test_credentials_a_cookie_only_from_an_allowed_origin(own_redis):
    """The session cookie counts only with no Origin (not a browser), an Origin of
    BACKEND_CORS_ORIGINS or the service's own host; a token is judged alone."""

    async def outcome(url: str, **kwargs) -> tuple[int, str] | str:
        async with connect_async(url, **kwargs) as socket:
            try:
                return (await receive(socket))["type"]
            except ConnectionClosed:
                return socket.close_code, socket.close_reason

    async def scenario():
        async with serving(own_redis.url, BACKEND_CORS_ORIGINS="https://ui.example.com") as (base, ctx):
            owner, token = await new_user(ctx)
            record = await new_job(ctx, owner)
            url = f"{base}/ws/{record.job_id}"
            cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
            host = base.removeprefix("ws://")
            refused = (1008, NOT_AUTHENTICATED)
            cases = [
                ({"additional_headers": cookie}, "connected"),
                ({"additional_headers": cookie, "origin": "https://ui.example.com"}, "connected"),
                ({"additional_headers": cookie, "origin": f"http://{host}"}, "connected"),
                ({"additional_headers": cookie, "origin": "https://evil.example.com"}, refused),
                ({"additional_headers": cookie, "origin": f"http://{APP_HOST}:{free_port()}"}, refused),
                ({"additional_headers": {"Cookie": f"{SESSION_COOKIE}=nonsense"}}, refused),
                ({"additional_headers": {"Authorization": f"Bearer {token}"}}, "connected"),
                ({"additional_headers": {"Authorization": f"Basic {token}", **cookie}}, refused),
            ]
            for kwargs, expected in cases:
                assert await outcome(url, **kwargs) == expected, kwargs
            # a token in the query is judged alone, even next to a good cookie
            assert await outcome(f"{url}?token=bad", additional_headers=cookie) == refused
            await until_released(ctx, 0)

    run(scenario)


def test_redis_away_closes_with_1013(tmp_path):
    server = RedisProcess(tmp_path).start()
    url = server.url

    async def scenario():
        async with serving(url) as (base, _):
            server.stop()
            async with connect_async(f"{base}/ws/demo/{uuid.uuid4()}") as socket:
                with pytest.raises(ConnectionClosed):
                    await receive(socket, timeout=15)
                assert (socket.close_code, socket.close_reason) == (
                    1013, "Storage (Redis) is unavailable; try again shortly.")

    run(scenario)
