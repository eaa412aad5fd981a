"""``GET /jobs/{id}/artifacts[/{name}]`` and the demo twins, on a real Redis and an artifact store in a
temporary folder, no Ray (fast tier): the listing, the bytes and headers of a download, ETag and 304,
inline or attachment by type, and 404 for another user's job, a demo path to a user's job, unknown and
invalid names (traversal)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import httpx
import pytest

from compute.config import JobLimits
from compute.submission import JobRequest, prepare
from serve_app.app import create_app
from serve_app.context import AppContext
from serve_app.routes.artifacts import etag_matches
from serve_app.security import create_access_token
from tests.support.asgi import app_client, settings_for
from tests.support.clients import run_async

LIMITS = JobLimits(1000, 8)


@pytest.fixture
def store_url(tmp_path) -> str:
    return str(tmp_path / "artifacts")


async def new_user(ctx: AppContext) -> tuple[str, dict]:
    user = await ctx.accounts.create_user(f"a-{uuid.uuid4().hex[:8]}@example.com", "x")
    return user["user_id"], {"Authorization": f"Bearer {create_access_token(ctx.settings, user['user_id'])[0]}"}


async def new_job(ctx: AppContext, owner: str) -> str:
    job = prepare(owner, JobRequest("range_sum", {"n": 100}, 2), LIMITS, ctx.artifacts)
    assert await ctx.store.create_job(job.record, inputs=job.inputs, index_owner=owner != "demo")
    return job.record.job_id


def run(redis_url: str, store_url: str, scenario):
    async def main():
        async with app_client(redis_url, ARTIFACT_STORE_URL=store_url) as (client, ctx):
            return await scenario(client, ctx)

    return run_async(main)


PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
ARCHIVE = os.urandom(700 * 1024)  # several read blocks
MANIFEST = json.dumps({"ok": 3}).encode()


async def job_with_artifacts(ctx: AppContext, owner: str) -> str:
    job_id = await new_job(ctx, owner)
    ctx.artifacts.write_artifact(job_id, "picture.png", PNG, "image/png")
    ctx.artifacts.write_artifact(job_id, "out/thumbnails.zip", ARCHIVE, "application/zip")
    ctx.artifacts.write_artifact(job_id, "manifest.json", MANIFEST, "application/json")
    ctx.artifacts.write_artifact(job_id, "page.html", b"<script>alert(1)</script>", "text/html")
    return job_id


def test_the_owner_lists_and_downloads_a_jobs_artifacts(redis_url, store_url):
    async def scenario(client: httpx.AsyncClient, ctx: AppContext):
        owner, headers = await new_user(ctx)
        job_id = await job_with_artifacts(ctx, owner)
        listing = await client.get(f"/v1/jobs/{job_id}/artifacts", headers=headers)
        short = await client.get(f"/jobs/{job_id}/artifacts", headers=headers)
        downloads = {}
        for item in listing.json()["artifacts"]:
            downloads[item["name"]] = await client.get(item["url"], headers=headers)
        return job_id, listing, short, downloads

    job_id, listing, short, downloads = run(redis_url, store_url, scenario)
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert body["job_id"] == job_id
    assert [a["name"] for a in body["artifacts"]] == ["manifest.json", "out/thumbnails.zip", "page.html", "picture.png"]
    by_name = {a["name"]: a for a in body["artifacts"]}
    assert by_name["out/thumbnails.zip"] == {
        "name": "out/thumbnails.zip", "size": len(ARCHIVE), "content_type": "application/zip",
        "sha256": hashlib.sha256(ARCHIVE).hexdigest(), "url": f"/v1/jobs/{job_id}/artifacts/out/thumbnails.zip"}
    assert short.json()["artifacts"][0]["url"] == f"/jobs/{job_id}/artifacts/manifest.json"

    archive = downloads["out/thumbnails.zip"]
    assert archive.status_code == 200 and archive.content == ARCHIVE
    assert archive.headers["content-type"] == "application/zip"
    assert archive.headers["content-length"] == str(len(ARCHIVE))
    assert archive.headers["etag"] == f'"{hashlib.sha256(ARCHIVE).hexdigest()}"'
    assert archive.headers["content-disposition"] == 'attachment; filename="thumbnails.zip"'
    assert archive.headers["x-content-type-options"] == "nosniff"

    picture = downloads["picture.png"]
    assert picture.content == PNG and picture.headers["content-type"] == "image/png"
    assert picture.headers["content-disposition"] == 'inline; filename="picture.png"'
    assert downloads["manifest.json"].headers["content-disposition"].startswith("inline;")
    assert json.loads(downloads["manifest.json"].content) == {"ok": 3}
    page = downloads["page.html"]  # never rendered on our origin
    assert page.headers["content-disposition"] == 'attachment; filename="page.html"'


def test_a_known_etag_answers_304(redis_url, store_url):
    async def scenario(client, ctx):
        owner, headers = await new_user(ctx)
        job_id = await job_with_artifacts(ctx, owner)
        path = f"/jobs/{job_id}/artifacts/picture.png"
        first = await client.get(path, headers=headers)
        again = await client.get(path, headers={**headers, "If-None-Match": first.headers["etag"]})
        weak = await client.get(path, headers={**headers, "If-None-Match": f'"other", W/{first.headers["etag"]}'})
        other = await client.get(path, headers={**headers, "If-None-Match": '"other"'})
        return first, again, weak, other

    first, again, weak, other = run(redis_url, store_url, scenario)
    assert again.status_code == weak.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert other.status_code == 200 and other.content == PNG


def test_etag_matching():
    assert etag_matches('"a"', '"a"') and etag_matches('W/"a"', '"a"') and etag_matches("*", '"a"')
    assert etag_matches('"b", "a"', '"a"')
    assert not etag_matches(None, '"a"') and not etag_matches('"b"', '"a"') and not etag_matches("a", '"a"')


def test_other_users_jobs_and_bad_names_are_not_found(redis_url, store_url):
    async def scenario(client, ctx):
        owner, headers = await new_user(ctx)
        _, stranger = await new_user(ctx)
        job_id = await job_with_artifacts(ctx, owner)
        demo_job = await job_with_artifacts(ctx, "demo")
        base = f"/jobs/{job_id}/artifacts"
        cases = {
            "stranger list": (base, stranger),
            "stranger file": (f"{base}/picture.png", stranger),
            "demo path to a user's job": (f"/jobs/demo/{job_id}/artifacts", {}),
            "demo path to a user's file": (f"/jobs/demo/{job_id}/artifacts/picture.png", {}),
            "user path to a demo job": (f"/jobs/{demo_job}/artifacts", headers),
            "unknown name": (f"{base}/nope.png", headers),
            "traversal (encoded)": (f"{base}/..%2f..%2fetc%2fpasswd", headers),
            "traversal (dots)": (f"{base}/../../../../etc/passwd", headers),
            "hidden facts": (f"{base}/.meta/picture.png.json", headers),
            "double slash": (f"{base}//picture.png", headers),
            "backslash": (f"{base}/..%5c..%5cetc%5cpasswd", headers),
            "nul": (f"{base}/picture.png%00", headers),
            "too long": (f"{base}/{'a' * 300}", headers),
            "unknown job": (f"/jobs/{uuid.uuid4()}/artifacts", headers),
            "not a job id": ("/jobs/not-a-job/artifacts/picture.png", headers),
        }
        answers = {name: await client.get(path, headers=h) for name, (path, h) in cases.items()}
        anonymous = await client.get(base)
        return answers, anonymous

    answers, anonymous = run(redis_url, store_url, scenario)
    wrong = {name: (r.status_code, r.text[:80]) for name, r in answers.items() if r.status_code != 404}
    assert wrong == {}
    assert answers["traversal (encoded)"].json() == {"detail": "Artifact not found."}
    assert answers["stranger list"].json() == {"detail": "Job not found."}
    assert anonymous.status_code == 401


def test_demo_jobs_have_artifact_twins(redis_url, store_url):
    async def scenario(client, ctx):
        job_id = await job_with_artifacts(ctx, "demo")
        listing = await client.get(f"/v1/jobs/demo/{job_id}/artifacts")
        file = await client.get(listing.json()["artifacts"][-1]["url"])
        empty_job = await new_job(ctx, "demo")
        empty = await client.get(f"/jobs/demo/{empty_job}/artifacts")
        return job_id, listing, file, empty_job, empty

    job_id, listing, file, empty_job, empty = run(redis_url, store_url, scenario)
    assert listing.status_code == 200
    assert listing.json()["artifacts"][-1]["url"] == f"/v1/jobs/demo/{job_id}/artifacts/picture.png"
    assert file.status_code == 200 and file.content == PNG
    assert empty.json() == {"job_id": empty_job, "artifacts": []}


def test_the_schema_documents_the_artifact_routes(redis_url, store_url):
    paths = create_app(settings_for(redis_url, ARTIFACT_STORE_URL=store_url)).openapi()["paths"]
    ids = {path: {m: op["operationId"] for m, op in ops.items()} for path, ops in paths.items() if "artifacts" in path}
    assert ids == {
        "/v1/jobs/{job_id}/artifacts": {"get": "list_job_artifacts"},
        "/v1/jobs/{job_id}/artifacts/{name}": {"get": "get_job_artifact"},
        "/v1/jobs/demo/{job_id}/artifacts": {"get": "list_demo_job_artifacts"},
        "/v1/jobs/demo/{job_id}/artifacts/{name}": {"get": "get_demo_job_artifact"},
    }
    download = paths["/v1/jobs/{job_id}/artifacts/{name}"]["get"]["responses"]
    assert {"200", "304", "401", "404"} <= set(download)
