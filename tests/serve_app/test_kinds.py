"""GET /kinds over HTTP against the real stack: the kinds and limits it reports are the ones enforced."""

from limits import parse

from serve_app.settings import Settings


def test_kinds_lists_every_registered_kind_sorted(api):
    response = api.get("/kinds")  # public: no credentials
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Type"].startswith("application/json")
    kinds = response.json()["kinds"]
    names = [kind["name"] for kind in kinds]
    assert names == sorted(names)
    assert {"range_sum", "prime_count", "sleepy_sum"} <= set(names)  # built-in and plug-in kinds alike
    assert set(names) == {"range_sum", "prime_count", "mandelbrot", "word_count", "thumbnails",  # built in
                          "sleepy_sum", "explode", "slow_timeout", "flaky", "big_result", "special_sum",  # tests'
                          "slow_combine", "counted_sum",
                          "monte_carlo_pi"}  # the README tutorial's (EXTRA_JOB_KIND_MODULES)
    by_name = {kind["name"]: kind for kind in kinds}
    range_sum = by_name["range_sum"]
    assert {k: range_sum[k] for k in ("name", "description", "timeout_seconds", "upload_fields", "demo")} == {
        "name": "range_sum", "description": "Sum of the integers 1..n.", "timeout_seconds": 600.0,
        "upload_fields": [], "demo": True}
    assert range_sum["params_schema"]["required"] == ["n"] and range_sum["resources"]["num_cpus"] == 1
    assert by_name["prime_count"]["timeout_seconds"] == 1800.0
    assert by_name["slow_timeout"]["timeout_seconds"] == 1.0
    schema = api.get("/openapi.json").json()
    legacy = schema["components"]["schemas"]["JobCreate"]["properties"]["kind"]["enum"]  # kinds whose params are n
    assert {"range_sum", "prime_count", "sleepy_sum", "flaky"} <= set(legacy) and "big_result" not in legacy
    assert schema["paths"]["/v1/kinds"]["get"]["tags"] == ["kinds"]


def test_limits_are_the_settings(api):
    settings = Settings()  # the stack runs with this session's environment
    assert api.get("/kinds").json()["limits"] == {
        "jobs": {"max_n": settings.max_n, "max_chunks": settings.max_chunks,
                 "max_active_jobs": settings.max_active_jobs_per_user, "rate_limit": settings.rate_limit_jobs},
        "demo": {"max_n": settings.demo_max_n, "max_chunks": settings.demo_max_chunks,
                 "rate_limit": settings.rate_limit_demo},
        "login": {"rate_limit": settings.rate_limit_login},
        "uploads": {"max_bytes": settings.max_upload_bytes, "rate_limit": settings.rate_limit_uploads},
        "max_result_bytes": settings.max_result_bytes,
        "max_artifact_bytes_per_job": settings.max_artifact_bytes_per_job,
    }


def test_reported_demo_limits_are_the_enforced_ones(api):
    demo = api.get("/kinds").json()["limits"]["demo"]
    at_limit = api.post("/jobs/demo", json={"n": demo["max_n"], "chunks": demo["max_chunks"]})
    assert at_limit.status_code == 202, at_limit.text
    assert at_limit.headers["X-RateLimit-Limit"] == str(parse(demo["rate_limit"]).amount)
    over_n = api.post("/jobs/demo", json={"n": demo["max_n"] + 1, "chunks": 1})
    assert over_n.status_code == 422 and f"{demo['max_n']:,}" in over_n.json()["detail"]
    over_chunks = api.post("/jobs/demo", json={"n": 10, "chunks": demo["max_chunks"] + 1})
    assert over_chunks.status_code == 422 and over_chunks.json()["errors"][0]["field"] == "chunks"
    message = f"Input should be greater than or equal to 1 (allowed: 1 to {demo['max_n']:,})"  # the guide's example
    assert api.post("/jobs/demo", json={"n": 0, "chunks": 1}).json() == {
        "detail": f"Invalid request: n: {message}",
        "errors": [{"field": "n", "message": message, "type": "greater_than_equal"}]}


def test_reported_job_limits_are_the_enforced_ones(api, user):
    jobs = api.get("/kinds").json()["limits"]["jobs"]
    over_n = api.post("/jobs", json={"n": jobs["max_n"] + 1, "chunks": 1}, headers=user["headers"])
    assert over_n.status_code == 422 and f"{jobs['max_n']:,}" in over_n.json()["detail"]
    over_chunks = api.post("/jobs", json={"n": 10, "chunks": jobs["max_chunks"] + 1}, headers=user["headers"])
    assert over_chunks.status_code == 422 and f"{jobs['max_chunks']:,}" in over_chunks.json()["detail"]
    accepted = api.post("/jobs", json={"n": 10, "chunks": jobs["max_chunks"]}, headers=user["headers"])
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["X-RateLimit-Limit"] == str(parse(jobs["rate_limit"]).amount)
