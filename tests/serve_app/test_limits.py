"""Limits that must hold and must not leak, through the session's HAProxy and two replicas: the
active-job limit when records vanish, idempotent replays under the rate limit, status pages."""

from __future__ import annotations

import uuid

import redis

from tests.support.jobs import wait_for_job
from tests.support.stack import STACK_KEYS


def submit(api, user, **body):
    return api.post("/jobs", json={"n": 1000, "chunks": 2, **body}, headers=user["headers"])


def test_jobs_whose_records_vanished_do_not_lock_their_owner_out(api, user, redis_url):
    """A short JOB_TTL_SECONDS or eviction can drop a record before its job finishes: the owner's
    active set forgets it, where a count of total - finished jobs never would."""
    ids = []
    for _ in range(4):  # MAX_ACTIVE_JOBS_PER_USER: 4 jobs of ~3 s each
        response = submit(api, user, n=3000, chunks=1, kind="sleepy_sum")
        assert response.status_code == 202, response.text
        ids.append(response.json()["job_id"])
    refused = submit(api, user)
    assert refused.status_code == 429 and "4 active jobs" in refused.json()["detail"]
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(*[STACK_KEYS.job(job_id) for job_id in ids])  # what expiry or eviction does
    finally:
        client.close()
    accepted = submit(api, user)
    assert accepted.status_code == 202, accepted.text
    assert wait_for_job(api, f"/jobs/{accepted.json()['job_id']}", headers=user["headers"])["status"] == "completed"


def test_an_idempotent_retry_is_replayed_not_rate_limited(api):
    """A client that retries after a timeout gets its original response even when its bucket is full,
    and the replay does not use up the bucket."""
    key = f"retry-{uuid.uuid4()}"
    body = {"n": 100, "chunks": 2}
    first = api.post("/jobs/demo", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 202
    for _ in range(4):  # the rest of RATE_LIMIT_DEMO (5/minute)
        assert api.post("/jobs/demo", json=body).status_code == 202
    assert api.post("/jobs/demo", json=body).status_code == 429
    for _ in range(3):
        retry = api.post("/jobs/demo", json=body, headers={"Idempotency-Key": key})
        assert retry.status_code == 202, retry.text
        assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"
    refused = api.post("/jobs/demo", json=body, headers={"Idempotency-Key": f"new-{uuid.uuid4()}"})
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_a_refused_request_does_not_keep_its_idempotency_key(api):
    """A key first sent while the bucket was full is not taken: used later, it starts the job."""
    body = {"n": 100, "chunks": 2}
    for _ in range(5):
        assert api.post("/jobs/demo", json=body).status_code == 202
    key = f"late-{uuid.uuid4()}"
    assert api.post("/jobs/demo", json=body, headers={"Idempotency-Key": key}).status_code == 429
    again = api.post("/jobs/demo", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 429 and "Idempotent-Replayed" not in again.headers


def test_status_pages_come_from_the_status_index(api, user):
    done = [submit(api, user, n=10 + i).json()["job_id"] for i in range(3)]
    for job_id in done:
        assert wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])["status"] == "completed"
    slow = submit(api, user, n=20_000, chunks=1, kind="sleepy_sum").json()["job_id"]
    assert api.delete(f"/jobs/{slow}", headers=user["headers"]).json()["status"] == "cancelled"

    def page(status, **params):
        response = api.get("/jobs", params={"status": status, **params}, headers=user["headers"])
        assert response.status_code == 200, response.text
        return response.json()

    completed = page("completed")
    assert completed["total"] == 3 and [j["job_id"] for j in completed["items"]] == done[::-1]
    assert [j["job_id"] for j in page("completed", limit=2, offset=2)["items"]] == [done[0]]
    assert [j["job_id"] for j in page("cancelled")["items"]] == [slow]
    assert page("running")["total"] == page("pending")["total"] == page("failed")["total"] == 0
