"""The client on real workloads (issue 11) against the live stack: kinded bodies and JSON results,
uploads, artifacts and checked downloads, retries; blocking, asyncio and the command line."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest
from PIL import Image

from client import AsyncClient, ChecksumMismatch, Client, Conflict, InvalidInput, Job, NotFound
from tests.client.support import RecordingTransport, cli
from tests.support.clients import run_async

MANDELBROT = {"width": 64, "height": 48}
WORDS = "\n".join(
    f"Line {i}: the Straße and the STRASSE, café Café naïve {'spam ' * (i % 7)}ünïcödé_words {i % 13}"
    for i in range(400)
) + "\n"


def reference_counts(text: str) -> Counter:
    """word_count's definition: the ``\\w+`` runs of the case-folded text."""
    return Counter(re.findall(r"\w+", text.casefold()))


def top(counts: Counter, k: int) -> list[list]:
    return [[word, count] for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]]


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "PNG"
        return image.size


def another_token(api) -> str:
    """A second registered user's token (for ownership checks)."""
    email, password = f"other-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery"
    assert api.post("/auth/register", json={"email": email, "password": password}).status_code == 201
    return api.post("/auth/login", json={"email": email, "password": password}).json()["access_token"]


def wait_until(jobs: Client, job_id: str, done, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while not done(job := jobs.get(job_id)):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_bodies_kinded_and_legacy_and_json_results(base_url, client_ip, token):
    transport = RecordingTransport(local_address=client_ip)
    with Client(base_url, token, transport=transport) as jobs:
        legacy = jobs.submit(n=100, chunks=2)
        kinded = jobs.submit("range_sum", params={"n": 100}, chunks=2, use_cache=False)
        flaky = jobs.submit("flaky", params={"n": 100, "failures": 2})  # chunks: the kind's default
        bodies = [json.loads(request.content) for _, request in transport.sent if request.method == "POST"]
        assert [list(body.items()) for body in bodies] == [
            [("n", 100), ("chunks", 2), ("kind", "range_sum")],  # the original body, as client 0.1 sent it
            [("kind", "range_sum"), ("params", {"n": 100}), ("chunks", 2), ("use_cache", False)],
            [("kind", "flaky"), ("params", {"n": 100, "failures": 2})],
        ]
        assert (legacy.kind, legacy.n, legacy.chunks, legacy.status) == ("range_sum", 100, 2, "pending")
        assert (kinded.n, kinded.params, flaky.n, flaky.params["failures"]) == (100, {"n": 100}, 100, 2)

        assert jobs.wait(legacy.job_id, timeout=60).result == 5050
        done = jobs.wait(kinded.job_id, timeout=60)
        assert (done.result, done.n, done.params, done.chunks, done.retry_of) == (5050, 100, {"n": 100}, 2, None)
        done = jobs.wait(flaky.job_id, timeout=60)
        assert done.status == "completed", done.detail
        assert done.result["sum"] == 5050 and set(done.result["attempts"]) == {3}  # a JSON object
        assert done.n == done.params["n"] == 100 and done.chunks == done.total_chunks >= 1  # n: params.n, as the server
        for chunk in jobs.chunks(flaky.job_id).chunks:  # two transient failures, then a success
            assert [a.error is None for a in chunk.attempts] == [False, False, True]
            assert "ConnectionError" in chunk.attempts[0].error and chunk.attempts[0].started_at <= chunk.ended_at
            assert isinstance(chunk.result, dict) and chunk.result["attempt"] == 3

        with pytest.raises(InvalidInput) as bad:  # the kind's own params, named under params.
            jobs.submit("mandelbrot", params={"width": 0, "colour": "blue"})
        assert set(bad.value.fields) <= {"params.width", "params.colour"} and bad.value.fields


def test_kinds_describe_params_resources_retry_and_uploads(jobs):
    kinds = jobs.kinds()
    mandelbrot, word_count, flaky = kinds.get("mandelbrot"), kinds.get("word_count"), kinds.get("flaky")
    assert {"range_sum", "prime_count", "mandelbrot", "word_count", "thumbnails"} <= set(kinds.names())
    assert {"width", "height", "max_iter", "zoom"} <= set(mandelbrot.params_schema["properties"])
    assert mandelbrot.params_schema["properties"]["width"]["maximum"] == 4096
    assert mandelbrot.default_chunks >= 1 and mandelbrot.demo and mandelbrot.demo_max["width"] >= 64
    assert (word_count.needs_upload, word_count.upload_fields, word_count.demo) == (True, ["upload_id"], False)
    assert word_count.resources["num_cpus"] == 1 and word_count.deterministic is True
    assert flaky.retry["max_attempts"] == 3 and flaky.retry["transient"] == ["ConnectionError"]
    assert kinds.get("no_such_kind") is None and kinds.limits["uploads"]["max_bytes"] > 0


def test_mandelbrot_artifacts_and_checked_downloads(jobs, tmp_path):
    accepted = jobs.submit("mandelbrot", params=MANDELBROT, chunks=4)
    job = jobs.wait(accepted.job_id, timeout=120)
    assert job.status == "completed", job.detail
    assert job.result["artifact"] == "mandelbrot.png" and (job.result["width"], job.result["height"]) == (64, 48)
    bands = jobs.chunks(job.job_id).chunks
    assert [(c.start, c.end) for c in bands] == [(0, 11), (12, 23), (24, 35), (36, 47)]
    assert [c.result["artifact"] for c in bands] == [f"bands/{i:05d}.png" for i in range(4)]
    assert all(len(c.attempts) == 1 and c.attempts[0].error is None for c in bands)

    listing = {a.name: a for a in jobs.artifacts(job.job_id)}
    assert {"mandelbrot.png", "iterations.npy", *(c.result["artifact"] for c in bands)} <= set(listing)
    png = listing["mandelbrot.png"]
    assert png.content_type == "image/png" and png.size > 0 and len(png.sha256) == 64 and png.url

    dest = tmp_path / "picture.png"
    assert jobs.download(job.job_id, "mandelbrot.png", dest) == png
    data = dest.read_bytes()
    assert hashlib.sha256(data).hexdigest() == png.sha256 and png_size(data) == (64, 48)
    (tmp_path / "folder").mkdir()
    jobs.download(job.job_id, "bands/00001.png", tmp_path / "folder")  # a folder: the name's last part
    assert png_size((tmp_path / "folder" / "00001.png").read_bytes()) == (64, 12)
    buffer = io.BytesIO(b"kept")
    buffer.seek(4)
    jobs.download(job.job_id, "mandelbrot.png", buffer)  # a file object: written where it stands
    assert buffer.getvalue() == b"kept" + data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "picture.png"]  # no temporary files left

    with pytest.raises(NotFound, match="has no artifact 'nope.png'.*mandelbrot.png"):
        jobs.download(job.job_id, "nope.png", tmp_path / "nope.png")
    with pytest.raises(NotFound):
        jobs.artifacts(str(uuid.uuid4()))


class TamperingTransport(httpx.HTTPTransport):
    """The real transport, but one byte of every artifact download flipped on its way in."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if "/artifacts/" not in request.url.path or response.status_code != 200:
            return response
        data = bytearray(response.read())
        response.close()
        data[len(data) // 2] ^= 0xFF
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-encoding"]
        return httpx.Response(200, headers=headers, content=bytes(data), request=request)


def test_a_download_that_does_not_match_its_sha256_raises_and_leaves_no_file(base_url, client_ip, token, tmp_path):
    with Client(base_url, token, transport=TamperingTransport(local_address=client_ip)) as jobs:
        job = jobs.wait(jobs.submit("mandelbrot", params=MANDELBROT, chunks=2).job_id, timeout=120)
        expected = next(a for a in jobs.artifacts(job.job_id) if a.name == "mandelbrot.png")
        dest = tmp_path / "mandelbrot.png"
        dest.write_bytes(b"an older picture")
        with pytest.raises(ChecksumMismatch) as corrupted:
            jobs.download(job.job_id, "mandelbrot.png", dest)
    error = corrupted.value
    assert (error.name, error.expected, error.size) == ("mandelbrot.png", expected.sha256, expected.size)
    assert error.actual != error.expected and "arrived corrupted" in str(error)
    assert dest.read_bytes() == b"an older picture"  # untouched, and no temporary file beside it
    assert [p.name for p in tmp_path.iterdir()] == ["mandelbrot.png"]


def test_upload_then_word_count_matches_a_counter(jobs, api, base_url, client_ip, tmp_path):
    source = tmp_path / "words.txt"
    source.write_text(WORDS, encoding="utf-8")
    raw = source.read_bytes()
    upload = jobs.upload(source)
    assert (upload.size, upload.sha256) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert (upload.filename, upload.content_type) == ("words.txt", "text/plain")
    assert jobs.upload_info(upload.upload_id) == upload

    job = jobs.wait(jobs.submit("word_count", params={"upload_id": upload.upload_id, "top_k": 5}, chunks=3).job_id,
                    timeout=120)
    assert job.status == "completed", job.detail
    counts = reference_counts(WORDS)
    assert (job.result["total_words"], job.result["distinct_words"]) == (sum(counts.values()), len(counts))
    assert job.result["top"] == top(counts, 5) and job.result["errors"] == []
    assert counts["strasse"] == 800  # "Straße" and "STRASSE" case-fold alike

    # a pipe cannot seek (nor tell its length): it is sent chunked, once
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_end, raw), os.close(write_end)))
    writer.start()
    with open(read_end, "rb", buffering=0) as pipe:
        piped = jobs.upload(pipe, filename="piped.txt")
    writer.join()
    assert (piped.size, piped.sha256, piped.filename) == (upload.size, upload.sha256, "piped.txt")

    with Client(base_url, another_token(api), transport=httpx.HTTPTransport(local_address=client_ip)) as stranger:
        with pytest.raises(NotFound):
            stranger.upload_info(upload.upload_id)
        with pytest.raises(NotFound):
            stranger.submit("word_count", params={"upload_id": upload.upload_id})
        with pytest.raises(NotFound):
            stranger.artifacts(job.job_id)
    jobs.delete_upload(upload.upload_id)
    with pytest.raises(NotFound):
        jobs.upload_info(upload.upload_id)
    with pytest.raises(NotFound):
        jobs.delete_upload(upload.upload_id)


def test_retry_a_cancelled_job_reuses_its_completed_chunks(jobs):
    """sleepy_sum 16000 in 8 chunks: 2 s a chunk, 4 at a time; cancelled once the first has completed."""
    original = jobs.submit("sleepy_sum", n=16_000, chunks=8).job_id
    wait_until(jobs, original, lambda job: job.completed_chunks >= 1)
    assert jobs.cancel(original).status == "cancelled"
    kept = {c.index: (c.worker_pid, c.started_at) for c in jobs.chunks(original).chunks if c.status == "completed"}
    assert kept and len(kept) < 8

    retried = jobs.retry(original)
    assert retried.retry_of == original and retried.job_id != original
    assert (retried.kind, retried.n, retried.params, retried.chunks) == ("sleepy_sum", 16_000, {"n": 16_000}, 8)
    job = jobs.wait(retried.job_id, timeout=120)
    assert (job.status, job.result, job.retry_of) == ("completed", 16_001 * 8_000, original)
    again = {c.index: (c.worker_pid, c.started_at) for c in jobs.chunks(job.job_id).chunks}
    assert {index: again[index] for index in kept} == kept  # not run again: the same process and time

    with pytest.raises(Conflict, match="only failed or cancelled jobs can be retried"):
        jobs.retry(job.job_id)
    with pytest.raises(NotFound):
        jobs.retry(str(uuid.uuid4()))


def test_retry_a_failed_job_runs_only_the_missing_chunk(jobs, tmp_path):
    flag = tmp_path / "still-broken"
    flag.touch()
    params = {"n": 100, "failures": 0, "fail_chunk": 1, "fail_while_exists": str(flag), "fail_delay": 1.0}
    failed = jobs.wait(jobs.submit("flaky", params=params, chunks=2).job_id, timeout=60)
    assert failed.status == "failed" and failed.detail.endswith("failed: ValueError: this chunk always fails")
    first = jobs.chunks(failed.job_id).chunks[0]
    assert first.status == "completed"
    flag.unlink()
    job = jobs.wait(jobs.retry(failed.job_id).job_id, timeout=60)
    assert job.status == "completed" and job.result["sum"] == 5050 and job.retry_of == failed.job_id
    again = jobs.chunks(job.job_id).chunks
    assert (again[0].worker_pid, again[0].started_at) == (first.worker_pid, first.started_at)
    assert again[1].started_at > first.ended_at


def test_async_client_uploads_counts_words_and_downloads_a_demo_picture(base_url, client_ip, token):
    async def scenario():
        transport = httpx.AsyncHTTPTransport(local_address=client_ip)
        async with AsyncClient(base_url, token, transport=transport) as jobs:
            upload = await jobs.upload(io.BytesIO(WORDS.encode()), filename="words.txt")
            info = await jobs.upload_info(upload.upload_id)
            accepted = await jobs.submit("word_count", params={"upload_id": upload.upload_id, "top_k": 3})
            counted = await jobs.wait(accepted.job_id, timeout=120)
            await jobs.delete_upload(upload.upload_id)
        async with AsyncClient(base_url, transport=transport) as demo:  # demo jobs and their artifacts: no token
            picture = await demo.wait((await demo.submit("mandelbrot", params=MANDELBROT, demo=True)).job_id,
                                      timeout=120, demo=True)
            listing = await demo.artifacts(picture.job_id, demo=True)
            buffer = io.BytesIO()
            artifact = await demo.download(picture.job_id, "mandelbrot.png", buffer, demo=True)
        return upload, info, counted, picture, listing, artifact, buffer.getvalue()

    upload, info, counted, picture, listing, artifact, data = run_async(scenario)
    assert info == upload and upload.size == len(WORDS.encode())
    counts = reference_counts(WORDS)
    assert counted.status == "completed" and counted.result["top"] == top(counts, 3)
    assert counted.result["total_words"] == sum(counts.values())
    assert picture.status == "completed" and picture.result["artifact"] == "mandelbrot.png"
    assert "mandelbrot.png" in [a.name for a in listing] and artifact.name == "mandelbrot.png"
    assert hashlib.sha256(data).hexdigest() == artifact.sha256 and png_size(data) == (64, 48)


# -- the command line ----------------------------------------------------------------------------

def test_cli_submits_kinded_jobs_uploads_lists_downloads_and_retries(base_url, client_ip, token, tmp_path):
    env = {"RAYJOBS_URL": base_url, "RAYJOBS_TOKEN": token}
    here = ("--interface", client_ip)

    done = cli("submit", "--kind", "mandelbrot", "--params", json.dumps(MANDELBROT), "--chunks", "2", "--follow",
               *here, env=env)
    assert done.returncode == 0, done.stderr
    job_id, result = done.stdout.splitlines()
    assert result.startswith("result: ") and json.loads(result.removeprefix("result: "))["width"] == 64
    assert "completed 2/2 chunks (100%)" in done.stderr

    listed = cli("artifacts", job_id, *here, env=env)
    assert listed.returncode == 0 and re.search(r"^mandelbrot\.png  \d+  image/png  [0-9a-f]{64}$", listed.stdout,
                                                 re.MULTILINE)
    fetched = cli("download", job_id, "mandelbrot.png", "-o", str(tmp_path / "m.png"), *here, env=env)
    assert fetched.returncode == 0 and "checked" in fetched.stderr
    assert png_size((tmp_path / "m.png").read_bytes()) == (64, 48)
    missing = cli("download", job_id, "nope.png", "-o", str(tmp_path / "n.png"), *here, env=env)
    assert missing.returncode == 1 and missing.stderr.startswith("error: Job") and not (tmp_path / "n.png").exists()

    (tmp_path / "words.txt").write_text(WORDS, encoding="utf-8")
    uploaded = cli("upload", str(tmp_path / "words.txt"), *here, env=env)
    assert uploaded.returncode == 0, uploaded.stderr
    upload_id = uploaded.stdout.strip()
    (tmp_path / "params.json").write_text(json.dumps({"upload_id": upload_id, "top_k": 2}))
    counted = cli("submit", "--kind", "word_count", "--params", f"@{tmp_path / 'params.json'}", "--follow",
                  *here, env=env)
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout.splitlines()[1].removeprefix("result: "))["top"] == top(reference_counts(WORDS), 2)

    with Client(base_url, token, transport=httpx.HTTPTransport(local_address=client_ip)) as jobs:
        cancelled = jobs.submit("sleepy_sum", n=4000, chunks=2).job_id
        jobs.cancel(cancelled)
    retried = cli("retry", cancelled, "--follow", *here, env=env)
    assert retried.returncode == 0, retried.stderr
    new_id, result = retried.stdout.splitlines()
    assert new_id != cancelled and result == "result: 8002000"
    refused = cli("retry", new_id, *here, env=env)
    assert refused.returncode == 1 and "only failed or cancelled jobs can be retried" in refused.stderr
    assert cli("submit", "--kind", "mandelbrot", "--params", "[1, 2]", env=env).returncode == 2
    listed = cli("list", "--limit", "10", *here, env=env)
    assert re.search(rf"^{job_id}  completed  mandelbrot   params=\{{", listed.stdout, re.MULTILINE)


def test_cli_upload_of_a_missing_file_is_an_error(base_url, token, tmp_path):
    missing = cli("upload", str(tmp_path / "absent.txt"), env={"RAYJOBS_URL": base_url, "RAYJOBS_TOKEN": token})
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and "absent.txt" in missing.stderr


def test_names_and_files_are_checked_before_any_request(jobs):
    for name in ("", "/etc/passwd", "a/../b", "a//b"):
        with pytest.raises(ValueError, match="not an artifact name"):
            jobs.download(str(uuid.uuid4()), name, io.BytesIO())
    with pytest.raises(TypeError, match="binary file"):
        jobs.upload(b"bytes are not a file")
