"""Authenticated jobs: ownership, listing, cancellation, live events, limits."""

import time
import uuid

import httpx

from tests.support.jobs import chunk_worker_pids, wait_for_job, wait_until
from tests.support.stack import STACK_KEYS


def submit(api, user, **body):
    response = api.post("/jobs", json={"n": 1000, "chunks": 4, **body}, headers=user["headers"])
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def test_jobs_require_a_bearer_token(api):
    for method, path in [("POST", "/jobs"), ("GET", "/jobs"), ("GET", f"/jobs/{uuid.uuid4()}"),
                         ("DELETE", f"/jobs/{uuid.uuid4()}"), ("GET", "/me"), ("GET", "/me/stats")]:
        response = api.request(method, path, json={"n": 1, "chunks": 1} if method == "POST" else None)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json() == {"detail": "Not authenticated."}


def test_authenticated_job_runs_with_large_exact_result(api, user):
    job_id = submit(api, user, n=100_000_000, chunks=8)
    job = wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])
    assert job["status"] == "completed"
    assert job["result"] == 100_000_000 * 100_000_001 // 2


def test_results_beyond_64_bits_are_exact(api, user):
    """sum(1..n) for n = 1e9 is about 5e17; prime_count stays small: both exact as JSON integers."""
    job_id = submit(api, user, n=1_000_000_000, chunks=16)
    job = wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"], timeout=180)
    assert job["result"] == 500_000_000_500_000_000
    raw = api.get(f"/jobs/{job_id}", headers=user["headers"]).text
    assert '"result":500000000500000000' in raw.replace(" ", "")


def test_prime_count_matches_known_values(api, user):
    ids = {n: submit(api, user, n=n, chunks=4, kind="prime_count") for n in (10**6, 10**7)}
    assert wait_for_job(api, f"/jobs/{ids[10**6]}", headers=user["headers"])["result"] == 78_498
    assert wait_for_job(api, f"/jobs/{ids[10**7]}", headers=user["headers"])["result"] == 664_579


def test_limits_for_authenticated_jobs(api, user):
    for body, field in [({"n": 1_000_000_001, "chunks": 1}, "n"), ({"n": 10, "chunks": 1001}, "chunks")]:
        response = api.post("/jobs", json=body, headers=user["headers"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field


def test_other_users_cannot_see_or_touch_a_job(api, user, base_url, client_ip):
    job_id = submit(api, user, kind="sleepy_sum", n=3000, chunks=2)
    other_email = f"other-{uuid.uuid4().hex[:8]}@example.com"
    api.post("/auth/register", json={"email": other_email, "password": "another password"})
    token = api.post("/auth/login", json={"email": other_email, "password": "another password"}).json()
    other = {"Authorization": f"Bearer {token['access_token']}"}
    for method, path in [("GET", f"/jobs/{job_id}"), ("GET", f"/jobs/{job_id}/chunks"),
                         ("GET", f"/jobs/{job_id}/events"), ("DELETE", f"/jobs/{job_id}")]:
        response = api.request(method, path, headers=other)
        assert response.status_code == 404, (method, path)
    assert api.get("/jobs", headers=other).json()["total"] == 0
    # a demo route cannot read a user's job either, and the owner still can
    assert api.get(f"/jobs/demo/{job_id}").status_code == 404
    assert wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])["status"] == "completed"
    # once finished the job is served from the replica's cache: still only to its owner
    assert api.get(f"/jobs/{job_id}", headers=user["headers"]).json()["result"] == 3000 * 3001 // 2
    assert api.get(f"/jobs/{job_id}", headers=other).status_code == 404
    assert api.get(f"/jobs/demo/{job_id}").status_code == 404


def test_finished_job_reads_do_not_need_redis(api, user, redis_url):
    """A finished job never changes, so its status comes from the replica once read (Redis is
    not asked again: here its record is gone from Redis and still served, for the cache's TTL)."""
    import redis

    job_id = submit(api, user, n=500, chunks=2)
    finished = wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])
    for _ in range(10):  # HAProxy spreads reads over both replicas: each caches the finished job
        assert api.get(f"/jobs/{job_id}", headers=user["headers"]).json() == finished
    client = redis.Redis.from_url(redis_url)
    assert client.delete(STACK_KEYS.job(job_id)) == 1
    for _ in range(10):
        assert api.get(f"/jobs/{job_id}", headers=user["headers"]).json() == finished
    assert api.get(f"/jobs/{job_id}/chunks", headers=user["headers"]).status_code == 404  # not cached


def test_list_is_newest_first_with_paging_and_status_filter(api, user):
    ids = [submit(api, user, n=100 + i, chunks=1) for i in range(3)]
    for job_id in ids:
        wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])
    page = api.get("/jobs", params={"limit": 2, "offset": 0}, headers=user["headers"]).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert [j["job_id"] for j in page["items"]] == ids[::-1][:2]
    rest = api.get("/jobs", params={"limit": 2, "offset": 2}, headers=user["headers"]).json()
    assert [j["job_id"] for j in rest["items"]] == [ids[0]]
    done = api.get("/jobs", params={"status": "completed"}, headers=user["headers"]).json()
    assert done["total"] == 3
    assert api.get("/jobs", params={"status": "failed"}, headers=user["headers"]).json()["total"] == 0
    assert api.get("/jobs", params={"status": "nope"}, headers=user["headers"]).status_code == 422
    assert api.get("/jobs", params={"limit": 0}, headers=user["headers"]).status_code == 422


def test_cancel_a_running_job_frees_its_workers(api, user, ray_session):
    import ray

    idle_cpus = ray.available_resources().get("CPU", 0)
    job_id = submit(api, user, kind="sleepy_sum", n=60_000, chunks=2)
    wait_until(lambda: api.get(f"/jobs/{job_id}", headers=user["headers"]).json()["status"] == "running",
               "the job running")
    wait_until(lambda: len(chunk_worker_pids(job_id)) == 2, "both chunks running")  # each holds a CPU
    response = api.delete(f"/jobs/{job_id}", headers=user["headers"])
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "cancelled" and job["detail"] == "Cancelled by the user."
    assert job["result"] is None
    chunks = api.get(f"/jobs/{job_id}/chunks", headers=user["headers"]).json()["chunks"]
    assert {c["status"] for c in chunks} == {"cancelled"}
    # the tasks really stopped, well before the 30 s the chunks would take: no worker runs them, and
    # their CPUs are free again (unless chunks of other tests' jobs, queued until now, took them)
    wait_until(lambda: not chunk_worker_pids(job_id), "the cancelled chunks stopped", timeout=15)
    wait_until(lambda: ray.available_resources().get("CPU", 0) >= idle_cpus
               or api.get("/monitoring/cluster").json()["scheduler"]["inflight_chunks"] > 0, "the CPUs freed",
               timeout=15)
    again = api.delete(f"/jobs/{job_id}", headers=user["headers"])
    assert again.status_code == 409


def test_cancel_a_finished_job_is_409(api, user):
    job_id = submit(api, user)
    wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])
    response = api.delete(f"/jobs/{job_id}", headers=user["headers"])
    assert response.status_code == 409
    assert "completed" in response.json()["detail"]


def test_failing_chunk_fails_the_job_with_a_clear_detail(api, user):
    job_id = submit(api, user, kind="explode", n=100, chunks=4)
    job = wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])
    assert job["status"] == "failed"
    assert "failed: ValueError: refusing to sum" in job["detail"]
    assert job["detail"].startswith("Chunk ")
    assert job["result"] is None


def test_job_over_its_time_budget_is_stopped(api, user):
    job_id = submit(api, user, kind="slow_timeout", n=10_000, chunks=2)
    job = wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])
    assert job["status"] == "failed"
    assert "time budget of 1 s" in job["detail"]


def test_active_job_limit_per_user(api, user):
    ids = [submit(api, user, kind="sleepy_sum", n=20_000, chunks=1) for _ in range(4)]
    response = api.post("/jobs", json={"n": 10, "chunks": 1}, headers=user["headers"])
    assert response.status_code == 429
    assert "4 active jobs" in response.json()["detail"]
    for job_id in ids:
        api.delete(f"/jobs/{job_id}", headers=user["headers"])
    assert api.post("/jobs", json={"n": 10, "chunks": 1}, headers=user["headers"]).status_code == 202


def test_stats_add_up_after_a_mix_of_outcomes(api, user):
    done = [submit(api, user, n=500, chunks=2) for _ in range(2)]
    failed = submit(api, user, kind="explode", n=100, chunks=2)
    slow = submit(api, user, kind="sleepy_sum", n=60_000, chunks=1)
    for job_id in done + [failed]:
        wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"])
    api.delete(f"/jobs/{slow}", headers=user["headers"])
    stats = api.get("/me/stats", headers=user["headers"]).json()
    assert stats["total_jobs"] == 4
    assert (stats["completed"], stats["failed"], stats["cancelled"], stats["running"]) == (2, 1, 1, 0)
    durations = [api.get(f"/jobs/{j}", headers=user["headers"]).json()["duration_ms"] for j in done]
    assert stats["avg_duration_ms"] == round(sum(durations) / 2) or abs(stats["avg_duration_ms"] - sum(durations) / 2) <= 1


def test_jobs_rate_limit_is_ten_per_minute(api, user):
    statuses = [api.post("/jobs", json={"n": 10, "chunks": 1, "kind": "range_sum"},
                         headers=user["headers"]).status_code for _ in range(11)]
    assert statuses[-1] == 429
    assert statuses.count(429) == 1


def test_idempotency_is_scoped_per_user(api, user):
    key = f"k-{uuid.uuid4()}"
    first = api.post("/jobs", json={"n": 50, "chunks": 1}, headers={**user["headers"], "Idempotency-Key": key})
    again = api.post("/jobs", json={"n": 50, "chunks": 1}, headers={**user["headers"], "Idempotency-Key": key})
    assert first.json() == again.json()
    assert api.get("/jobs", headers=user["headers"]).json()["total"] == 1
    other_email = f"idem-{uuid.uuid4().hex[:8]}@example.com"
    api.post("/auth/register", json={"email": other_email, "password": "another password"})
    token = api.post("/auth/login", json={"email": other_email, "password": "another password"}).json()
    other = {"Authorization": f"Bearer {token['access_token']}", "Idempotency-Key": key}
    theirs = api.post("/jobs", json={"n": 50, "chunks": 1}, headers=other)
    assert theirs.status_code == 202 and theirs.json()["job_id"] != first.json()["job_id"]


def test_concurrent_requests_with_one_key_start_exactly_one_job(base_url, user, client_ip):
    import concurrent.futures

    key = f"race-{uuid.uuid4()}"
    headers = {**user["headers"], "Idempotency-Key": key, "X-Forwarded-For": client_ip}

    def post(_):
        with httpx.Client(base_url=base_url, timeout=30) as client:
            return client.post("/jobs", json={"n": 77, "chunks": 1}, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["job_id"] for r in responses}) == 1
    with httpx.Client(base_url=base_url, headers={"X-Forwarded-For": client_ip}) as client:
        assert client.get("/jobs", headers=user["headers"]).json()["total"] == 1


def test_progress_moves_during_a_slow_job(api, user):
    job_id = submit(api, user, kind="sleepy_sum", n=8_000, chunks=8)
    seen = set()
    deadline = time.time() + 60
    while True:
        job = api.get(f"/jobs/{job_id}", headers=user["headers"]).json()
        seen.add(job["completed_chunks"])
        if job["status"] == "completed":
            break
        assert time.time() < deadline
        time.sleep(0.02)
    assert seen - {0, 8}, f"progress jumped straight to the end: {sorted(seen)}"
    assert job["result"] == 8000 * 8001 // 2


def parse_sse(text: str) -> list[tuple[str, dict]]:
    import json

    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_events_stream_progress_in_order_then_close(api, user):
    job_id = submit(api, user, kind="sleepy_sum", n=4_000, chunks=4)
    with api.stream("GET", f"/jobs/{job_id}/events", headers=user["headers"]) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = parse_sse(text)
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) <= {"progress"}
    counts = [data["completed_chunks"] for _, data in events]
    assert counts == sorted(counts) and counts[-1] == 4
    assert events[-1][1]["status"] == "completed" and events[-1][1]["result"] == 4000 * 4001 // 2


def test_events_of_a_finished_job_send_one_done_event(api):
    job_id = api.post("/jobs/demo", json={"n": 10, "chunks": 1}).json()["job_id"]
    wait_for_job(api, f"/jobs/demo/{job_id}")
    events = parse_sse(api.get(f"/jobs/demo/{job_id}/events").text)
    assert [name for name, _ in events] == ["done"]
    assert events[0][1]["result"] == 55


def test_running_job_status_is_cached_until_its_change_event(api, user, redis_url):
    """A running job's status is served from the replica until a change event for it arrives:
    here a write that publishes nothing stays unseen, and the event makes it visible."""
    import redis

    job_id = submit(api, user, kind="sleepy_sum", n=20_000, chunks=1)  # runs for ~20 s
    deadline = time.time() + 30
    while api.get(f"/jobs/{job_id}", headers=user["headers"]).json()["status"] != "running":
        assert time.time() < deadline
        time.sleep(0.02)
    for _ in range(6):  # HAProxy spreads reads over both replicas: each caches the running job
        api.get(f"/jobs/{job_id}", headers=user["headers"])
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset(STACK_KEYS.job(job_id), "detail", "changed without an event")
        for _ in range(6):
            assert api.get(f"/jobs/{job_id}", headers=user["headers"]).json()["detail"] is None
        client.publish(STACK_KEYS.events(job_id), '{"status": "running"}')
        deadline = time.time() + 5
        while api.get(f"/jobs/{job_id}", headers=user["headers"]).json()["detail"] is None:
            assert time.time() < deadline, "the change event did not refresh the cached status"
            time.sleep(0.01)
    finally:
        assert api.delete(f"/jobs/{job_id}", headers=user["headers"]).json()["status"] == "cancelled"
