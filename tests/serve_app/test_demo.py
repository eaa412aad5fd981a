"""The public demo routes, end to end over HTTP against real Ray and Redis."""

import uuid

import pytest

from tests.support.jobs import wait_for_job


def test_demo_job_runs_to_exact_result(api):
    response = api.post("/jobs/demo", json={"n": 1000, "chunks": 4})
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "pending"
    assert uuid.UUID(accepted["job_id"]).version == 4
    job = wait_for_job(api, f"/jobs/demo/{accepted['job_id']}")
    assert job["status"] == "completed"
    assert job["result"] == 500500
    assert job["progress"] == 1.0
    assert job["completed_chunks"] == job["total_chunks"] == 4
    assert job["detail"]
    assert job["created_at"] and job["started_at"] and job["completed_at"]
    assert job["duration_ms"] >= 0
    assert response.headers["X-RateLimit-Limit"] == "5"


def test_demo_maximum_matches_known_sum(api):
    job_id = api.post("/jobs/demo", json={"n": 10_000, "chunks": 8}).json()["job_id"]
    assert wait_for_job(api, f"/jobs/demo/{job_id}")["result"] == 50_005_000


def test_demo_chunks_record_where_they_ran(api):
    job_id = api.post("/jobs/demo", json={"n": 1000, "chunks": 3}).json()["job_id"]
    wait_for_job(api, f"/jobs/demo/{job_id}")
    chunks = api.get(f"/jobs/demo/{job_id}/chunks").json()
    assert chunks["total_chunks"] == 3
    ranges = [(c["start"], c["end"]) for c in chunks["chunks"]]
    assert ranges == [(1, 334), (335, 667), (668, 1000)]
    for chunk in chunks["chunks"]:
        assert chunk["status"] == "completed"
        assert chunk["result"] == sum(range(chunk["start"], chunk["end"] + 1))
        assert len(chunk["node_id"]) == 56 and chunk["worker_pid"] > 0
        assert chunk["started_at"] <= chunk["ended_at"]


def test_chunks_above_n_are_clamped(api):
    job_id = api.post("/jobs/demo", json={"n": 3, "chunks": 8}).json()["job_id"]
    job = wait_for_job(api, f"/jobs/demo/{job_id}")
    assert (job["result"], job["total_chunks"]) == (6, 3)


def test_prime_count_kind(api):
    job_id = api.post("/jobs/demo", json={"n": 10_000, "chunks": 7, "kind": "prime_count"}).json()["job_id"]
    assert wait_for_job(api, f"/jobs/demo/{job_id}")["result"] == 1229


@pytest.mark.parametrize(
    "body, field",
    [
        ({"n": 0, "chunks": 4}, "n"),
        ({"n": 10_001, "chunks": 4}, "n"),
        ({"n": 100, "chunks": 0}, "chunks"),
        ({"n": 100, "chunks": 9}, "chunks"),
        ({"n": "100", "chunks": 4}, "n"),
        ({"n": 1.5, "chunks": 4}, "n"),
        ({"n": True, "chunks": 4}, "n"),
        ({"chunks": 4}, "n"),
        ({"n": 100}, "chunks"),
        ({"n": 100, "chunks": 4, "kind": "bogus"}, "kind"),
        ({"n": 100, "chunks": 4, "extra": 1}, "extra"),
        ([1, 2], "body"),
    ],
)
def test_bad_demo_input_is_422_naming_the_field(api, body, field):
    response = api.post("/jobs/demo", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert field in [e["field"] for e in error["errors"]]
    assert field in error["detail"]


def test_range_errors_state_the_allowed_range(api):
    detail = api.post("/jobs/demo", json={"n": 20_000, "chunks": 4}).json()["detail"]
    assert "10,000" in detail and "20,000" in detail
    detail = api.post("/jobs/demo", json={"n": "x", "chunks": 4}).json()["detail"]
    assert "allowed: 1 to 10,000" in detail


def test_non_json_body_is_422(api):
    response = api.post("/jobs/demo", content=b"n=5&chunks=2", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    response = api.post("/jobs/demo", content=b"hello", headers={"Content-Type": "text/plain"})
    assert response.status_code == 422


def test_oversized_body_is_413(api):
    response = api.post("/jobs/demo", content=b"{" + b" " * 70_000 + b"}",
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "bytes" in response.json()["detail"]


@pytest.mark.parametrize("headers, status, detail", [
    ({"X-Padding": "a" * 20_000}, 431, "headers are larger than 16384 bytes"),   # one huge header
    ({f"X-H{i}": "v" * 100 for i in range(200)}, 431, "headers are larger than 16384 bytes"),  # many
    # a megabyte is beyond the ingress's buffer (2 x MAX_HEADER_BYTES): HAProxy refuses it itself
    ({"Cookie": "session=" + "x" * 1_000_000}, 400, None),
], ids=["one-huge", "many", "one-megabyte"])
def test_huge_headers_are_refused_and_create_nothing(api, headers, status, detail):
    before = api.get("/monitoring/cluster").json()["jobs_total"]
    response = api.post("/jobs/demo", json={"n": 10, "chunks": 1}, headers=headers)
    assert response.status_code == status
    if detail:
        assert detail in response.json()["detail"]
    assert api.get("/jobs/demo/" + str(uuid.uuid4()), headers=headers).status_code == status
    assert api.get("/monitoring/cluster").json()["jobs_total"] == before
    assert api.get("/monitoring/health", headers={"X-Padding": "a" * 8_000}).status_code == 200


def test_unknown_and_malformed_ids_are_404_json(api):
    for job_id in (str(uuid.uuid4()), "not-a-uuid", "x" * 500):
        response = api.get(f"/jobs/demo/{job_id}")
        assert response.status_code == 404
        assert response.json() == {"detail": "Job not found."}
    assert api.get(f"/jobs/demo/{uuid.uuid4()}/chunks").status_code == 404


def test_demo_rate_limit_is_five_per_minute_with_retry_after(api):
    statuses = []
    for _ in range(6):
        response = api.post("/jobs/demo", json={"n": 10, "chunks": 1})
        statuses.append(response.status_code)
    assert statuses == [202] * 5 + [429]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert "5/minute" in response.json()["detail"]


DEMO = {"n": 10, "chunks": 1}


def test_spoofed_forwarded_headers_from_one_address_share_its_bucket(base_url):
    """An attacker on one address who names a new client in every request is still one client."""
    from tests.support.clients import client_from, fresh_ip

    with client_from(base_url) as attacker:
        statuses = [attacker.post("/jobs/demo", json=DEMO, headers={"X-Forwarded-For": fresh_ip()}).status_code
                    for _ in range(4)]
        statuses += [attacker.post("/jobs/demo", json=DEMO, headers={"Forwarded": f"for={fresh_ip()}"}).status_code
                     for _ in range(4)]
    assert statuses == [202] * 5 + [429] * 3


def test_clients_on_different_addresses_have_their_own_limits(base_url):
    from tests.support.clients import client_from

    with client_from(base_url) as first, client_from(base_url) as second:
        assert [first.post("/jobs/demo", json=DEMO).status_code for _ in range(6)] == [202] * 5 + [429]
        assert second.post("/jobs/demo", json=DEMO).status_code == 202


def test_a_trusted_proxy_names_the_client(base_url):
    """The session trusts 127.0.0.1 as a proxy (TRUSTED_PROXIES): the address it forwards is the client."""
    from tests.support.clients import client_from, fresh_ip

    with client_from(base_url, "127.0.0.1") as proxy:
        one, two = fresh_ip(), fresh_ip()
        for _ in range(5):
            assert proxy.post("/jobs/demo", json=DEMO, headers={"X-Forwarded-For": one}).status_code == 202
        assert proxy.post("/jobs/demo", json=DEMO, headers={"X-Forwarded-For": one}).status_code == 429
        assert proxy.post("/jobs/demo", json=DEMO, headers={"X-Forwarded-For": two}).status_code == 202


def test_idempotency_key_returns_original_and_starts_no_job(api, redis_url):
    key = f"key-{uuid.uuid4()}"
    first = api.post("/jobs/demo", json={"n": 100, "chunks": 2}, headers={"Idempotency-Key": key})
    second = api.post("/jobs/demo", json={"n": 100, "chunks": 2}, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    conflict = api.post("/jobs/demo", json={"n": 101, "chunks": 2}, headers={"Idempotency-Key": key})
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()["detail"]


def test_idempotency_key_is_scoped_to_the_client(api, base_url):
    from tests.support.clients import client_from

    key = f"key-{uuid.uuid4()}"
    first = api.post("/jobs/demo", json={"n": 100, "chunks": 2}, headers={"Idempotency-Key": key})
    with client_from(base_url) as other:
        second = other.post("/jobs/demo", json={"n": 100, "chunks": 2}, headers={"Idempotency-Key": key})
    assert second.status_code == 202
    assert second.json()["job_id"] != first.json()["job_id"]


def test_bad_idempotency_key_is_422(api):
    response = api.post("/jobs/demo", json={"n": 100, "chunks": 2}, headers={"Idempotency-Key": "k" * 300})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
