"""GET /metrics: the Prometheus exposition summed over replicas, on a real Redis, no Ray (fast tier).

Two apps on one Redis stand for two replicas behind the load balancer: a scrape through either
sees the requests both served.
"""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from compute.records import JobStatus
from tests.support.asgi import app_client
from tests.support.clients import run_async


def _replica(redis_url: str, prefix: str):
    return app_client(redis_url, "127.0.8.1", REDIS_KEY_PREFIX=prefix, RATE_LIMIT_DEMO="2/minute")


def _samples(text: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_sum_every_replica_and_count_jobs_limits_and_replays(redis_url):
    prefix = f"m-{uuid.uuid4().hex[:6]}:"

    async def scenario():
        async with _replica(redis_url, prefix) as (one, ctx_one), _replica(redis_url, prefix) as (two, ctx_two):
            job = (await one.post("/jobs/demo", json={"n": 10, "chunks": 2}, headers={"Idempotency-Key": "k1"})).json()
            await two.post("/v1/jobs/demo", json={"n": 10, "chunks": 2}, headers={"Idempotency-Key": "k1"})  # replay
            await two.get(f"/v1/jobs/demo/{job['job_id']}")  # the status fast path
            await one.get(f"/jobs/demo/{job['job_id']}")
            limited = [await two.post("/jobs/demo", json={"n": 10, "chunks": 1}) for _ in range(2)]
            await one.get("/no/such/path")
            await ctx_two.metrics.flush()  # what replica two's background flush does every second
            scraped = await one.get("/metrics")
            await ctx_one.store.finish(await ctx_one.store.get_job(job["job_id"]), JobStatus.cancelled)
            later = await one.get("/metrics")
            return scraped, later, limited

    scraped, later, limited = run_async(lambda: scenario())
    assert [r.status_code for r in limited] == [202, 429]
    assert scraped.status_code == 200 and scraped.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = _samples(scraped.text)
    route = "/jobs/demo/{job_id}"
    assert found[("rayjobs_http_requests_total", (("method", "GET"), ("route", route), ("status", "200")))] == 2
    assert found[("rayjobs_http_requests_total", (("method", "POST"), ("route", "/jobs/demo"), ("status", "202")))] == 3
    assert found[("rayjobs_http_requests_total", (("method", "POST"), ("route", "/jobs/demo"), ("status", "429")))] == 1
    assert found[("rayjobs_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert found[("rayjobs_http_request_duration_seconds_count", (("route", route),))] == 2
    assert found[("rayjobs_http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", route)))] == 2
    assert found[("rayjobs_http_request_duration_seconds_sum", (("route", route),))] > 0
    assert found[("rayjobs_rate_limited_total", (("limit", "demo"),))] == 1
    assert found[("rayjobs_idempotent_replays_total", ())] == 1
    assert found[("rayjobs_jobs_submitted_total", (("kind", "range_sum"),))] == 2
    assert found[("rayjobs_jobs_active", ())] == 2
    moved = _samples(later.text)
    assert moved[("rayjobs_jobs_finished_total", (("kind", "range_sum"), ("status", "cancelled")))] == 1
    assert moved[("rayjobs_jobs_active", ())] == 1
    # the first scrape is counted by the next one
    assert moved[("rayjobs_http_requests_total", (("method", "GET"), ("route", "/metrics"), ("status", "200")))] >= 1
