"""The result cache (RESULT_CACHE_SECONDS) through the HTTP app on a real Redis, no Ray: the runner's
part is what it does after a job completes (``finish`` then ``remember_result``): fast tier."""

from __future__ import annotations

import uuid

from compute.records import JobStatus
from compute.submission import remember_result
from serve_app.context import AppContext
from tests.support.asgi import app_client
from tests.support.clients import run_async


async def _run(redis_url: str, scenario, **env):
    env.setdefault("RESULT_CACHE_SECONDS", 3600)  # whatever the session environment says
    async with app_client(redis_url, RATE_LIMIT_DEMO="100/minute", **env) as (client, ctx):  # the test plays the runner
        return await scenario(client, ctx)


async def _complete(ctx: AppContext, job_id: str, result: int) -> None:
    """What the runner does when a job's chunks are in."""
    await ctx.store.mark_running(job_id)
    record = await ctx.store.get_job(job_id)
    await ctx.store.finish(record, JobStatus.completed, result=result)
    await remember_result(ctx.store, record, ctx.settings.result_cache_seconds)


def test_a_repeat_is_answered_by_a_completed_copy(redis_url):
    body = {"n": 10, "chunks": 2}

    async def scenario(client, ctx):
        first = (await client.post("/v1/jobs/demo", json=body)).json()
        while_running = (await client.post("/v1/jobs/demo", json=body)).json()  # not completed yet: computes
        await _complete(ctx, first["job_id"], 55)
        repeat = await client.post("/v1/jobs/demo", json=body)
        status = (await client.get(f"/v1/jobs/demo/{repeat.json()['job_id']}")).json()
        chunks = (await client.get(f"/v1/jobs/demo/{repeat.json()['job_id']}/chunks")).json()
        fresh = (await client.post("/v1/jobs/demo", json={**body, "use_cache": False})).json()
        other = (await client.post("/v1/jobs/demo", json={"n": 11, "chunks": 2})).json()
        original = (await client.get(f"/v1/jobs/demo/{first['job_id']}")).json()
        return first, while_running, repeat, status, chunks, fresh, other, original

    first, while_running, repeat, status, chunks, fresh, other, original = run_async(lambda: _run(redis_url, scenario))
    assert first == {"job_id": first["job_id"], "status": "pending", "cached": False, "result": None}
    assert while_running["cached"] is False and while_running["status"] == "pending"
    assert repeat.status_code == 202
    assert repeat.json() == {"job_id": repeat.json()["job_id"], "status": "completed", "cached": True, "result": 55}
    assert repeat.json()["job_id"] != first["job_id"]
    assert status["status"] == "completed" and status["is_cached"] is True and status["result"] == 55
    assert status["completed_chunks"] == status["total_chunks"] == 2 and status["progress"] == 1.0
    assert status["duration_ms"] == original["duration_ms"] and "cache" in status["detail"]
    assert original["is_cached"] is False
    assert {c["status"] for c in chunks["chunks"]} == {"cached"}
    assert fresh["cached"] is False and fresh["status"] == "pending"
    assert other["cached"] is False


def test_the_cache_is_per_owner_and_can_be_switched_off(redis_url):
    async def scenario(client, ctx):
        user = await ctx.accounts.create_user(f"c-{uuid.uuid4().hex[:8]}@example.com", "x")
        from serve_app.security import create_access_token

        headers = {"Authorization": f"Bearer {create_access_token(ctx.settings, user['user_id'])[0]}"}
        demo = (await client.post("/jobs/demo", json={"n": 20, "chunks": 2})).json()
        await _complete(ctx, demo["job_id"], 210)
        mine = (await client.post("/jobs", json={"n": 20, "chunks": 2}, headers=headers)).json()
        return mine

    mine = run_async(lambda: _run(redis_url, scenario))
    assert mine["cached"] is False  # a demo job's result does not answer a user's job

    async def switched_off(client, ctx):
        first = (await client.post("/jobs/demo", json={"n": 30, "chunks": 2})).json()
        await _complete(ctx, first["job_id"], 465)
        return (await client.post("/jobs/demo", json={"n": 30, "chunks": 2})).json()

    assert run_async(lambda: _run(redis_url, switched_off, RESULT_CACHE_SECONDS=0))["cached"] is False
