"""The kind API over HTTP on the real stack: kinded bodies, GET /kinds, retry policies, results as
any JSON, MAX_RESULT_BYTES, retrying a failed or cancelled job, chunk progress."""

import os
import tempfile
import time
from datetime import datetime

from tests.support.jobs import wait_for_job, wait_until


def post_job(api, user, body: dict, expect: int = 202) -> dict:
    response = api.post("/jobs", json=body, headers=user["headers"])
    assert response.status_code == expect, response.text
    return response.json()


def job_of(api, user, body: dict, timeout: float = 60) -> dict:
    job_id = post_job(api, user, body)["job_id"]
    return wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"], timeout=timeout)


def chunks_of(api, user, job_id: str) -> list[dict]:
    response = api.get(f"/jobs/{job_id}/chunks", headers=user["headers"])
    assert response.status_code == 200, response.text
    return response.json()["chunks"]


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def test_kinded_and_legacy_bodies_compute_the_same_job(api, user):
    legacy = job_of(api, user, {"n": 10_000, "chunks": 4, "kind": "prime_count"})
    kinded = job_of(api, user, {"kind": "prime_count", "params": {"n": 10_000}, "chunks": 4})
    assert legacy["result"] == kinded["result"] == 1_229
    for job in (legacy, kinded):
        assert job["params"] == {"n": 10_000} and job["n"] == 10_000 and job["chunks"] == 4
    chunks = chunks_of(api, user, kinded["job_id"])
    assert [(c["start"], c["end"]) for c in chunks] == [(1, 2500), (2501, 5000), (5001, 7500), (7501, 10000)]
    assert all(len(c["attempts"]) == 1 and c["attempts"][0]["error"] is None for c in chunks)


def test_bad_kinded_bodies_are_422_naming_the_field(api, user):
    cases = [
        ({"kind": "no_such", "params": {}}, "kind", "no_such"),
        ({"kind": "range_sum", "params": {"n": 10, "extra": 1}}, "params.extra", "Unknown field"),
        ({"kind": "range_sum", "params": {"n": 2_000_000_000}}, "params.n", "between 1 and 1,000,000,000"),
        ({"kind": "range_sum", "params": {"n": "10"}}, "params.n", "integer"),
        ({"kind": "flaky", "params": {"n": 5, "failures": 9}}, "params.failures", "less than or equal to 5"),
        ({"kind": "range_sum", "params": {"n": 10}, "chunks": 0}, "chunks", "greater than or equal to 1"),
        ({"params": {"n": 10}}, "kind", "required"),
    ]
    for body, field, words in cases:
        response = api.post("/jobs", json=body, headers=user["headers"])
        assert response.status_code == 422, (body, response.text)
        error = response.json()["errors"][0]
        assert error["field"] == field and words in error["message"], (body, error)


def test_kinds_describe_params_resources_and_retry(api):
    kinds = {k["name"]: k for k in api.get("/kinds").json()["kinds"]}
    flaky = kinds["flaky"]
    assert flaky["params_schema"]["properties"]["failures"]["maximum"] == 5
    assert flaky["retry"] == {"transient": ["ConnectionError"], "max_attempts": 3, "backoff_seconds": 0.2,
                              "max_backoff_seconds": 30.0}
    assert kinds["special_sum"]["resources"]["custom"] == {"special": 1}
    assert kinds["range_sum"]["params_schema"]["properties"]["n"]["minimum"] == 1
    assert not kinds["range_sum"]["needs_upload"] and kinds["big_result"]["max_chunks"] == 1
    schema = api.get("/openapi.json").json()
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    kinded = [branch for branch in body["oneOf"] if "discriminator" in branch]
    assert kinded and set(kinded[0]["discriminator"]["mapping"]) >= {"range_sum", "prime_count", "flaky"}


def test_transient_errors_are_retried_with_backoff_and_every_attempt_recorded(api, user):
    job = job_of(api, user, {"kind": "flaky", "params": {"n": 30, "failures": 2}, "chunks": 3})
    assert job["status"] == "completed", job
    assert job["result"] == {"sum": 465, "attempts": [3, 3, 3]}
    for chunk in chunks_of(api, user, job["job_id"]):
        attempts = chunk["attempts"]
        assert [a["error"] is None for a in attempts] == [False, False, True]
        assert "ConnectionError: flaky backend (attempt 1)" == attempts[0]["error"]
        gaps = [ts(attempts[i + 1]["started_at"]) - ts(attempts[i]["ended_at"]) for i in range(2)]
        assert gaps[0] >= 0.19 and gaps[1] >= 0.39, gaps  # 0.2 s, then 0.4 s (plus jitter)


def test_transient_errors_past_max_attempts_fail_the_job_naming_them(api, user):
    job = job_of(api, user, {"kind": "flaky", "params": {"n": 10, "failures": 3}, "chunks": 1})
    assert job["status"] == "failed"
    assert job["detail"] == "Chunk 0 (range 1..10) failed: ConnectionError: flaky backend (attempt 3) after 3 attempts"


def test_a_result_over_max_result_bytes_fails_saying_to_write_an_artifact(api, user):
    job = job_of(api, user, {"kind": "big_result", "params": {"size": 1_100_000}, "chunks": 1})
    assert job["status"] == "failed" and job["result"] is None
    assert "MAX_RESULT_BYTES" in job["detail"] and "artifact" in job["detail"]
    fine = job_of(api, user, {"kind": "big_result", "params": {"size": 1000}, "chunks": 1})
    assert fine["result"] == "x" * 1000


def test_a_combine_past_the_time_budget_fails_the_job(api, user):
    job = job_of(api, user, {"kind": "slow_combine", "params": {"size": 1}, "chunks": 1}, timeout=30)
    assert job["status"] == "failed" and "time budget of 3 s while combining" in job["detail"], job
    assert job["completed_chunks"] == 1


def test_retry_of_a_failed_job_reruns_only_the_missing_chunks(api, user):
    marker = tempfile.NamedTemporaryFile(delete=False)
    marker.close()
    try:
        params = {"n": 40, "failures": 0, "fail_chunk": 3, "fail_while_exists": marker.name, "fail_delay": 1.5}
        failed = job_of(api, user, {"kind": "flaky", "params": params, "chunks": 4})
        assert failed["status"] == "failed" and "this chunk always fails" in failed["detail"]
        before = {c["index"]: c for c in chunks_of(api, user, failed["job_id"]) if c["status"] == "completed"}
        assert set(before) == {0, 1, 2}
    finally:
        os.unlink(marker.name)
    response = api.post(f"/jobs/{failed['job_id']}/retry", headers=user["headers"])
    assert response.status_code == 202, response.text
    retried = wait_for_job(api, f"/jobs/{response.json()['job_id']}", headers=user["headers"])
    assert retried["status"] == "completed" and retried["retry_of"] == failed["job_id"]
    assert retried["result"]["sum"] == 820 and retried["params"] == failed["params"]
    after = {c["index"]: c for c in chunks_of(api, user, retried["job_id"])}
    for index, chunk in before.items():  # reused as they were: same worker, same times
        assert {k: after[index][k] for k in ("worker_pid", "started_at", "ended_at", "result")} == \
               {k: chunk[k] for k in ("worker_pid", "started_at", "ended_at", "result")}
    assert ts(after[3]["started_at"]) > ts(failed["completed_at"])  # only the missing chunk ran again
    again = api.post(f"/jobs/{retried['job_id']}/retry", headers=user["headers"])
    assert again.status_code == 409 and "only failed or cancelled" in again.json()["detail"]


def test_retry_of_a_cancelled_job_and_chunk_progress_while_it_runs(api, user):
    job_id = post_job(api, user, {"kind": "flaky", "params": {"n": 20, "failures": 0, "sleep": 3.0},
                                  "chunks": 2})["job_id"]
    running = wait_until(lambda: [c for c in chunks_of(api, user, job_id) if c["progress"] is not None],
                         "a chunk reporting progress", timeout=30)
    assert all(0 < c["progress"] <= 1 and c["status"] == "running" for c in running)
    cancelled = api.delete(f"/jobs/{job_id}", headers=user["headers"]).json()
    assert cancelled["status"] == "cancelled"
    response = api.post(f"/jobs/{job_id}/retry", headers=user["headers"])
    assert response.status_code == 202
    retried = wait_for_job(api, f"/jobs/{response.json()['job_id']}", headers=user["headers"])
    assert retried["status"] == "completed" and retried["result"]["sum"] == 210
    other = api.post(f"/jobs/{job_id}/retry", headers={"Authorization": "Bearer nope"})
    assert other.status_code == 401


def test_demo_jobs_take_kinded_bodies_within_demo_limits(api):
    response = api.post("/jobs/demo", json={"kind": "range_sum", "params": {"n": 100}, "chunks": 2})
    assert response.status_code == 202, response.text
    job = wait_for_job(api, f"/jobs/demo/{response.json()['job_id']}")
    assert job["result"] == 5050 and job["params"] == {"n": 100}
    too_big = api.post("/jobs/demo", json={"kind": "range_sum", "params": {"n": 10_001}})
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "params.n"


def test_artifacts_and_uploads_expire_with_their_jobs(api, user, ray_session):
    """The runner's tidy-up (every 5 minutes; called directly here): a job folder whose record is
    gone is deleted at the second look, a live job's stays, an upload older than JOB_TTL_SECONDS goes."""
    import ray

    from compute.artifacts import ArtifactStore
    from compute.config import get_compute_settings
    from compute.runner import RUNNER_NAME

    store = ArtifactStore(ray_session["ARTIFACT_STORE_URL"])
    live = job_of(api, user, {"kind": "mandelbrot", "params": {"width": 8, "height": 4}, "chunks": 1})
    assert store.list_artifacts(live["job_id"])
    orphan = "00000000-0000-4000-8000-000000000000"
    store.write_artifact(orphan, "left.txt", b"no record")
    old = store.begin_upload("someone", "old.txt", "text/plain")
    old.write(b"old")
    info = old.commit()
    ttl = get_compute_settings().job_ttl_seconds
    meta = store._upload_path(info.upload_id) + ".json"  # its facts say it is older than the TTL
    store._write_json(meta, {**vars(info), "created_at": time.time() - ttl - 1})
    runner = ray.get_actor(RUNNER_NAME, namespace=ray_session["RAY_NAMESPACE"])
    ray.get(runner.expire_artifacts.remote())  # first look: the orphan is only noted
    assert store.list_artifacts(orphan) and store.upload_info(info.upload_id) is None
    ray.get(runner.expire_artifacts.remote())
    assert orphan not in store.job_ids() and store.list_artifacts(live["job_id"])
