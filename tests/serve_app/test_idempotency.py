"""Idempotency keys and the rate limit around job submission, over the ASGI app on a real Redis, no
Ray (the hand-off to the runner is a plain function): fast tier."""

from __future__ import annotations

import asyncio
import uuid

from tests.support.asgi import app_client
from tests.support.clients import run_async


async def _run(redis_url: str, scenario, **env):
    async with app_client(redis_url, f"127.0.9.{uuid.uuid4().int % 250}", **env) as (client, ctx):
        return await scenario(client, ctx)


def test_concurrent_requests_with_one_key_create_one_job(redis_url):
    key = uuid.uuid4().hex

    async def scenario(client, ctx):
        responses = await asyncio.gather(*[client.post("/jobs/demo", json={"n": 100, "chunks": 2},
                                                       headers={"Idempotency-Key": key}) for _ in range(8)])
        other_body = await client.post("/jobs/demo", json={"n": 101, "chunks": 2}, headers={"Idempotency-Key": key})
        return responses, other_body, list(ctx.handed)

    responses, other_body, handed = run_async(lambda: _run(redis_url, scenario, RATE_LIMIT_DEMO="100/minute"))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["job_id"] for r in responses}) == 1 and handed == [responses[0].json()["job_id"]]
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 7
    assert other_body.status_code == 409 and "different request body" in other_body.json()["detail"]


def test_a_replay_is_neither_counted_nor_refused_by_the_rate_limit(redis_url):
    key = uuid.uuid4().hex

    async def scenario(client, ctx):
        first = await client.post("/jobs/demo", json={"n": 10, "chunks": 1}, headers={"Idempotency-Key": key})
        replays = [await client.post("/jobs/demo", json={"n": 10, "chunks": 1}, headers={"Idempotency-Key": key})
                   for _ in range(4)]
        fresh = [await client.post("/jobs/demo", json={"n": 10, "chunks": 1}) for _ in range(2)]
        return first, replays, fresh

    first, replays, fresh = run_async(lambda: _run(redis_url, scenario, RATE_LIMIT_DEMO="2/minute"))
    assert first.status_code == 202
    assert [r.status_code for r in replays] == [202] * 4
    assert {r.json()["job_id"] for r in replays} == {first.json()["job_id"]}
    # the replays did not use the budget: one more new job fits (2/minute), the next does not
    assert [r.status_code for r in fresh] == [202, 429]
    assert int(fresh[1].headers["Retry-After"]) >= 1 and isinstance(fresh[1].json()["detail"], str)


def test_an_invalid_request_claims_no_key(redis_url):
    key = uuid.uuid4().hex

    async def scenario(client, ctx):
        bad = await client.post("/jobs/demo", json={"n": 10**9, "chunks": 1}, headers={"Idempotency-Key": key})
        good = await client.post("/jobs/demo", json={"n": 10, "chunks": 1}, headers={"Idempotency-Key": key})
        return bad, good

    bad, good = run_async(lambda: _run(redis_url, scenario, RATE_LIMIT_DEMO="100/minute"))
    assert bad.status_code == 422 and "n" in bad.json()["detail"]
    assert good.status_code == 202
