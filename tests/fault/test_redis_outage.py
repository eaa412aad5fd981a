"""Redis goes away and comes back (AOF on): 503s meanwhile, nothing lost, recovery by itself."""

import time

from tests.support.jobs import wait_for_job


def wait_until(predicate, timeout=30, interval=0.2):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline
        time.sleep(interval)


def test_redis_restart_keeps_records_and_service_recovers(api, user, redis_server):
    done = api.post("/jobs", json={"n": 1000, "chunks": 2}, headers=user["headers"]).json()["job_id"]
    wait_for_job(api, f"/jobs/{done}", headers=user["headers"])
    running = api.post("/jobs", json={"n": 4000, "chunks": 2, "kind": "sleepy_sum"},
                       headers=user["headers"]).json()["job_id"]
    token = api.post("/me/tokens", json={"name": "survives"}, headers=user["headers"]).json()["token"]
    time.sleep(1.5)  # AOF is fsynced every second

    redis_server.stop()
    try:
        health = api.get("/monitoring/health")
        assert health.status_code == 503 and health.json()["redis"] != "ok"
        for method, path, body in [("GET", f"/jobs/{done}", None), ("POST", "/jobs/demo", {"n": 5, "chunks": 1}),
                                   ("GET", "/me", None), ("POST", "/auth/login", {"email": user["email"],
                                                                                  "password": user["password"]})]:
            response = api.request(method, path, json=body, headers=user["headers"])
            assert response.status_code == 503, (method, path, response.text)
            assert "unavailable" in response.json()["detail"]
        time.sleep(3)  # the running job finishes its chunks while Redis is away
    finally:
        redis_server.start()

    wait_until(lambda: api.get("/monitoring/health").status_code == 200)
    assert api.get(f"/jobs/{done}", headers=user["headers"]).json()["result"] == 1000 * 1001 // 2
    assert api.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    job = wait_for_job(api, f"/jobs/{running}", headers=user["headers"], timeout=60)
    assert job["status"] == "completed" and job["result"] == 4000 * 4001 // 2
    fresh = api.post("/jobs/demo", json={"n": 10, "chunks": 1}).json()["job_id"]
    assert wait_for_job(api, f"/jobs/demo/{fresh}")["result"] == 55
