"""Status reads (``GET /jobs/{id}``, ``GET /jobs/demo/{id}``) through the app on real Redis, no Ray.

Status routes run a lean handler (serve_app/status_reads.py) instead of FastAPI's dependency solver;
these tests check every outcome (200 body, 401, 404, 503) and that a read touches Redis once,
whatever its outcome: fast tier.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from cluster.redis_process import RedisProcess
from compute.config import JobLimits
from compute.submission import JobRequest, prepare
from serve_app.app import create_app
from serve_app.context import AppContext
from serve_app.security import create_access_token
from tests.support.asgi import app_client, settings_for
from tests.support.clients import run_async


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A Redis of this module's own, so command counts see only these requests."""
    server = RedisProcess(tmp_path_factory.mktemp("status-redis")).start()
    yield server
    server.stop()


async def _with_app(redis_url: str, scenario):
    async with app_client(redis_url) as (client, ctx):
        return await scenario(client, ctx)


async def _hgetall_calls(ctx: AppContext) -> int:
    stats = await ctx.store.redis.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


def test_reads_answer_like_the_routes_and_touch_redis_once(own_redis):
    async def scenario(client: httpx.AsyncClient, ctx: AppContext):
        owner = await ctx.accounts.create_user(f"s-{uuid.uuid4().hex[:8]}@example.com", "x")
        other = await ctx.accounts.create_user(f"o-{uuid.uuid4().hex[:8]}@example.com", "x")
        mine = prepare(owner["user_id"], JobRequest("range_sum", {"n": 100}, 4), JobLimits(100, 4)).record
        demo = prepare("demo", JobRequest("range_sum", {"n": 10}, 2), JobLimits(10, 2)).record
        assert await ctx.store.create_job(mine) and await ctx.store.create_job(demo, index_owner=False)
        bearer = {"Authorization": f"Bearer {create_access_token(ctx.settings, owner['user_id'])[0]}"}
        stranger = {"Authorization": f"Bearer {create_access_token(ctx.settings, other['user_id'])[0]}"}
        missing = str(uuid.uuid4())

        # (path, headers, status, HGETALLs: the job's record once, and the signed-in user's once)
        cases = [
            ("/jobs/demo/" + demo.job_id, {}, 200, 1),
            ("/jobs/" + mine.job_id, bearer, 200, 2),
            ("/jobs/" + mine.job_id, stranger, 404, 2),  # not yours: same as missing
            ("/jobs/" + mine.job_id, {}, 401, 0),
            ("/jobs/" + mine.job_id, {"Authorization": "Bearer not-a-jwt"}, 401, 0),
            ("/jobs/demo/" + mine.job_id, {}, 404, 1),  # a user's job is not a demo job
            ("/jobs/demo/" + missing, {}, 404, 1),
            ("/jobs/demo/not-a-uuid", {}, 404, 0),
        ]
        answers = []
        for path, headers, _, _ in cases:
            ctx.statuses = type(ctx.statuses)()  # no replica cache: every read goes to Redis
            ctx.events.statuses = ctx.statuses
            before = await _hgetall_calls(ctx)
            response = await client.get(path, headers=headers)
            answers.append((response, await _hgetall_calls(ctx) - before))
        return cases, answers, mine, demo

    cases, answers, mine, demo = run_async(lambda: _with_app(own_redis.url, scenario))
    for (path, headers, status, expected_reads), (response, reads) in zip(cases, answers):
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/json", path
        if status == 200:
            body = response.json()
            assert body["job_id"] in (mine.job_id, demo.job_id) and body["status"] == "pending"
        else:
            assert isinstance(response.json()["detail"], str), path
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"
        assert reads == expected_reads, (path, reads)


def test_redis_away_is_one_503(own_redis, tmp_path):
    """With Redis gone, a status read answers 503 (the app's handler), once, not a 500."""
    server = RedisProcess(tmp_path).start()
    url = server.url
    server.stop()

    async def scenario(client: httpx.AsyncClient, ctx: AppContext):
        return await client.get(f"/jobs/demo/{uuid.uuid4()}")

    response = run_async(lambda: _with_app(url, scenario))
    assert response.status_code == 503
    assert response.json() == {"detail": "Storage (Redis) is unavailable; try again shortly."}


def test_status_routes_are_documented_like_the_others(own_redis):
    """The lean handler changes nothing in the schema: response model, errors, bearer security."""
    schema = create_app(settings_for(own_redis.url)).openapi()
    demo, mine = schema["paths"]["/v1/jobs/demo/{job_id}"]["get"], schema["paths"]["/v1/jobs/{job_id}"]["get"]
    for operation in (demo, mine):
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/JobOut"}
        assert {"404", "503"} <= set(operation["responses"])
    assert "security" not in demo
    assert mine["security"] == [{"HTTPBearer": []}] and "401" in mine["responses"]


def test_the_fast_path_table_is_the_marked_routes_under_any_prefix():
    from serve_app.routes import demo, jobs
    from serve_app.status_reads import status_routes

    assert [r.path for r in status_routes(demo.router)] == ["/jobs/demo/{job_id}"]
    assert [r.path for r in status_routes(jobs.router, "/v1")] == ["/v1/jobs/{job_id}"]
    route = status_routes(jobs.router)[0]
    assert route.regex.match("/jobs/abc")["job_id"] == "abc"
    assert not route.regex.match("/jobs/abc/chunks") and not route.regex.match("/jobs/")


def test_routes_declared_before_a_status_route_keep_their_paths(own_redis):
    """``/jobs/events`` has the shape of ``/jobs/{job_id}``: the router, not the fast path, answers it."""

    async def scenario(client: httpx.AsyncClient, ctx: AppContext):
        return await client.get("/jobs/events")

    response = run_async(lambda: _with_app(own_redis.url, scenario))
    assert response.status_code == 401 and response.json() == {"detail": "Not authenticated."}
