"""Cross-cutting behaviour: health, cluster figures, docs, headers, CORS, pages, unknown routes."""

import uuid


def test_health_reports_each_part(api):
    body = api.get("/monitoring/health").json()
    assert body["status"] == body["redis"] == body["ray"] == "ok"
    assert body["version"]


def test_cluster_figures(api):
    job_id = api.post("/jobs/demo", json={"n": 100, "chunks": 2}).json()["job_id"]
    from tests.support.jobs import wait_for_job

    wait_for_job(api, f"/jobs/demo/{job_id}")
    body = api.get("/monitoring/cluster").json()
    assert body["nodes_alive"] >= 1 and body["cpus_total"] >= 1
    assert 0 <= body["cpus_used"] <= body["cpus_total"]
    assert body["jobs_total"] >= 1 and body["jobs_completed"] >= 1
    assert body["chunks_per_second"] >= 0
    assert all(len(n["node_id"]) == 56 for n in body["nodes"])


def test_openapi_documents_every_route_with_errors(api):
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ["/jobs/demo", "/jobs/demo/{job_id}", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/chunks",
                 "/jobs/{job_id}/events", "/auth/register", "/auth/login", "/me", "/me/tokens",
                 "/monitoring/health", "/monitoring/cluster"]:
        assert "/v1" + path in paths, path  # documented under /v1; the short form is an alias
        assert path not in paths, path
    assert {"202", "409", "413", "422", "429", "503"} <= set(paths["/v1/jobs/demo"]["post"]["responses"])
    assert "404" in paths["/v1/jobs/{job_id}"]["get"]["responses"]
    assert api.get("/docs").status_code == 200
    assert api.get("/redoc").status_code == 200


def test_security_headers_everywhere_and_no_server_banner(api):
    for path in ["/", "/monitoring/health", f"/jobs/demo/{uuid.uuid4()}", "/nowhere"]:
        response = api.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        # What the README promises: the app sends no banner of its own (the middleware drops any
        # `server` header the framework sets) and the one the ingress' uvicorn adds carries no version.
        assert response.headers.get_list("server") == ["uvicorn"], path
        assert "x-powered-by" not in response.headers


def test_cors_only_for_the_allow_list(api):
    allowed = api.options("/jobs/demo", headers={"Origin": "http://localhost:3000",
                                                 "Access-Control-Request-Method": "POST"})
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    denied = api.options("/jobs/demo", headers={"Origin": "https://evil.example",
                                                "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in denied.headers


def test_unknown_routes_are_json_404_and_pages_get_html(api):
    response = api.get("/no/such/thing")
    assert response.status_code == 404 and response.json()["detail"].startswith("No route")
    assert api.delete("/monitoring/health").status_code == 405
    assert api.get("/").status_code == 200
    assert "text/html" in api.get("/").headers["content-type"]


def test_static_assets_are_revalidated_and_health_names_the_dashboard(api):
    response = api.get("/static/css/app.css")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
    assert api.get("/monitoring/health").json()["ray_dashboard_url"].startswith("http")


def test_status_reads_keep_every_edge_behaviour(api):
    """Status reads are answered by a fast path inside the middlewares: headers, CORS and size
    limits apply to them exactly as to every route."""
    from tests.support.jobs import wait_for_job

    job_id = api.post("/jobs/demo", json={"n": 100, "chunks": 2}).json()["job_id"]
    for _ in range(2):  # running or pending (Redis), then finished (the replica's cache)
        response = api.get(f"/jobs/demo/{job_id}", headers={"Origin": "http://localhost:3000"})
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        wait_for_job(api, f"/jobs/demo/{job_id}")
    denied = api.get(f"/jobs/demo/{job_id}", headers={"Origin": "https://evil.example"})
    assert denied.status_code == 200 and "access-control-allow-origin" not in denied.headers
    assert api.get(f"/jobs/demo/{job_id}", headers={"X-Padding": "a" * 20_000}).status_code == 431
    assert api.get(f"/jobs/{job_id}").status_code == 401  # not a demo read: still needs a token
