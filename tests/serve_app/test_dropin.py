"""What the template's clients call: /v1 paths, /healthz, readiness, service stats, 429 with
Retry-After, through the same ingress `make run` starts (HAProxy in front of two replicas)."""

from __future__ import annotations

import uuid

from tests.support.jobs import wait_for_job


def test_every_documented_v1_route_has_its_short_alias(api):
    schema = api.get("/openapi.json").json()
    documented = set(schema["paths"]) - {"/healthz", "/metrics"}  # probes live at the root only
    assert documented and all(path.startswith("/v1/") for path in documented), sorted(documented)
    assert {"/v1/jobs", "/v1/jobs/demo", "/v1/me", "/v1/me/stats", "/v1/jobs/{job_id}/events",
            "/v1/monitoring/ready", "/v1/monitoring/stats"} <= documented
    # the short form answers for every documented path (same route: same status for the same request)
    for path, operations in schema["paths"].items():
        if "get" not in operations or "{" in path or path.endswith("/events"):
            continue
        assert api.get(path).status_code == api.get(path.removeprefix("/v1")).status_code, path
    operation_ids = {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}
    assert {"create_job", "get_job", "list_jobs", "cancel_job", "create_demo_job", "get_demo_job"} <= operation_ids
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "A JWT from `/auth/login` or an API token (`rjt_...`)."}


def test_the_template_frontend_calls_in_order(api):
    """Its health dot, then Try-It: POST /v1/jobs/demo, poll GET /v1/jobs/demo/{id}, and a 429 with
    Retry-After once the demo limit (5/minute per client) is used up."""
    health = api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "healthy", "service": "Ray Jobs", "version": health.json()["version"]}
    created = api.post("/v1/jobs/demo", json={"n": 1000, "chunks": 4})
    assert created.status_code == 202 and created.json()["status"] == "pending"
    job = wait_for_job(api, f"/v1/jobs/demo/{created.json()['job_id']}")
    assert job["status"] == "completed" and job["result"] == 500500
    assert api.get(f"/jobs/demo/{job['job_id']}").json() == job  # one job, either path
    answers = [api.post("/v1/jobs/demo", json={"n": 10, "chunks": 1}) for _ in range(5)]
    assert [a.status_code for a in answers] == [202] * 4 + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1 and isinstance(answers[-1].json()["detail"], str)


def test_readiness_and_service_stats(api, user):
    ready = api.get("/monitoring/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["checks"] == {"redis": "ok", "ray": "ok", "runner": "ok"}
    before = api.get("/v1/monitoring/stats").json()
    job_id = api.post("/v1/jobs", json={"n": 10_000, "chunks": 4}, headers=user["headers"]).json()["job_id"]
    wait_for_job(api, f"/v1/jobs/{job_id}", headers=user["headers"])
    after = api.get("/monitoring/stats").json()
    assert after["jobs_total"] >= before["jobs_total"] + 1
    assert after["jobs_by_status"]["completed"] >= before["jobs_by_status"]["completed"] + 1
    assert set(after["jobs_by_status"]) == {"pending", "running", "completed", "failed", "cancelled"}
    assert after["chunks_per_second"] > 0 and after["queued_chunks"] >= 0 and after["active_users"] >= 0


def test_errors_keep_a_string_detail(api, user):
    for response in [api.post("/v1/jobs/demo", json={"n": 0, "chunks": 1}),
                     api.get(f"/v1/jobs/{uuid.uuid4()}", headers=user["headers"]),
                     api.get("/v1/me"),
                     api.post("/v1/jobs", json={"n": "x"}, headers=user["headers"])]:
        assert response.status_code in (401, 404, 422)
        assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def _metric(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def test_metrics_through_the_ingress_move_after_a_job(api):
    """Scrapes land on either replica; each replica adds its counts to Redis every second."""
    import time

    before = api.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain; version=0.0.4")
    job_id = api.post("/v1/jobs/demo", json={"n": 100, "chunks": 2}).json()["job_id"]
    wait_for_job(api, f"/v1/jobs/demo/{job_id}")
    deadline = time.time() + 10
    while True:
        after = api.get("/metrics").text
        moved = (_metric(after, "rayjobs_jobs_submitted_total", kind="range_sum")
                 > _metric(before.text, "rayjobs_jobs_submitted_total", kind="range_sum")
                 and _metric(after, "rayjobs_jobs_finished_total", kind="range_sum", status="completed")
                 > _metric(before.text, "rayjobs_jobs_finished_total", kind="range_sum", status="completed")
                 and _metric(after, "rayjobs_http_requests_total", route="/jobs/demo/{job_id}", status="200")
                 > _metric(before.text, "rayjobs_http_requests_total", route="/jobs/demo/{job_id}", status="200"))
        if moved:
            break
        assert time.time() < deadline, "the counters did not move after a job"
        time.sleep(0.5)
