"""Redis goes away and comes back (AOF on): 503s meanwhile, nothing lost, recovery by itself."""

import redis

from tests.support.jobs import chunk_worker_pids, wait_for_job, wait_until


def test_redis_restart_keeps_records_and_service_recovers(api, user, redis_server):
    done = api.post("/jobs", json={"n": 1000, "chunks": 2}, headers=user["headers"]).json()["job_id"]
    wait_for_job(api, f"/jobs/{done}", headers=user["headers"])
    running = api.post("/jobs", json={"n": 4000, "chunks": 2, "kind": "sleepy_sum"},
                       headers=user["headers"]).json()["job_id"]
    token = api.post("/me/tokens", json={"name": "survives"}, headers=user["headers"]).json()["token"]
    # every acknowledged write is already on disk: Redis fsyncs the AOF before it answers
    assert redis.Redis.from_url(redis_server.url).config_get("appendfsync") == {"appendfsync": "always"}
    wait_until(lambda: len(chunk_worker_pids(running)) == 2, "both chunks of the running job running")

    redis_server.stop()
    try:
        health = api.get("/monitoring/health")
        assert health.status_code == 503 and health.json()["redis"] != "ok"
        ready = api.get("/monitoring/ready")  # readiness names what does not answer; liveness stays up
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        assert ready.json()["checks"]["redis"] != "ok" and ready.json()["checks"]["runner"] == "ok"
        assert api.get("/healthz").status_code == 200
        for method, path, body in [("GET", f"/jobs/{done}", None), ("POST", "/jobs/demo", {"n": 5, "chunks": 1}),
                                   ("GET", "/me", None), ("POST", "/auth/login", {"email": user["email"],
                                                                                  "password": user["password"]})]:
            response = api.request(method, path, json=body, headers=user["headers"])
            assert response.status_code == 503, (method, path, response.text)
            assert "unavailable" in response.json()["detail"]
        wait_until(lambda: not chunk_worker_pids(running), "the running job's chunks finished while Redis "
                   "is away", timeout=30)
    finally:
        redis_server.start()

    wait_until(lambda: api.get("/monitoring/health").status_code == 200, "healthy again", interval=0.2)
    wait_until(lambda: api.get("/monitoring/ready").status_code == 200, "ready again", interval=0.2)
    assert api.get(f"/jobs/{done}", headers=user["headers"]).json()["result"] == 1000 * 1001 // 2
    assert api.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    job = wait_for_job(api, f"/jobs/{running}", headers=user["headers"], timeout=60)
    assert job["status"] == "completed" and job["result"] == 4000 * 4001 // 2
    fresh = api.post("/jobs/demo", json={"n": 10, "chunks": 1})
    assert fresh.status_code == 202, fresh.text
    assert wait_for_job(api, f"/jobs/demo/{fresh.json()['job_id']}")["result"] == 55
