"""The shipped workloads end to end on the real stack (HAProxy, replicas, Ray, Redis, the artifact
store on disk): each against an independent reference, through uploads and artifact downloads as a
user would call them."""

import io
import re
import zipfile
from collections import Counter

import numpy as np
from PIL import Image

from tests.compute.kinds.test_mandelbrot import reference_counts
from tests.support.archives import bomb_zip, image_bytes, zip_bytes
from tests.support.jobs import wait_for_job

TEXT = "Ünïcode café CAFÉ naïve\r\nthe quick brown fox, the lazy dog!\nß straße STRASSE\n" * 40 + "last line"


def upload(api, user, name: str, data: bytes, content_type: str = "application/octet-stream") -> dict:
    response = api.post("/uploads", files={"file": (name, data, content_type)}, headers=user["headers"])
    assert response.status_code == 201, response.text
    return response.json()


def run(api, user, body: dict, timeout: float = 90) -> dict:
    response = api.post("/jobs", json=body, headers=user["headers"])
    assert response.status_code == 202, response.text
    return wait_for_job(api, f"/jobs/{response.json()['job_id']}", headers=user["headers"], timeout=timeout)


def download(api, user, job: dict, name: str) -> bytes:
    response = api.get(f"/jobs/{job['job_id']}/artifacts/{name}", headers=user["headers"])
    assert response.status_code == 200, response.text
    return response.content


def test_mandelbrot_matches_a_pure_python_reference_and_its_bands_are_artifacts(api, user):
    params = {"width": 48, "height": 32, "max_iter": 60}
    job = run(api, user, {"kind": "mandelbrot", "params": params, "chunks": 5})
    assert job["status"] == "completed", job["detail"]
    assert job["result"] == {"width": 48, "height": 32, "max_iter": 60, "artifact": "mandelbrot.png",
                             "iterations": "iterations.npy"}
    listing = api.get(f"/jobs/{job['job_id']}/artifacts", headers=user["headers"]).json()["artifacts"]
    names = {a["name"] for a in listing}
    assert {"mandelbrot.png", "iterations.npy"} <= names and {f"bands/{i:05d}.png" for i in range(5)} <= names
    counts = np.load(io.BytesIO(download(api, user, job, "iterations.npy")))
    assert counts.tolist() == reference_counts(48, 32, 60)
    image = Image.open(io.BytesIO(download(api, user, job, "mandelbrot.png")))
    assert image.size == (48, 32) and image.format == "PNG"
    chunks = api.get(f"/jobs/{job['job_id']}/chunks", headers=user["headers"]).json()["chunks"]
    rows = [(c["result"]["start"], c["result"]["end"]) for c in chunks]
    assert rows[0][0] == 0 and rows[-1][1] == 31 and all(b[0] == a[1] + 1 for a, b in zip(rows, rows[1:]))
    for chunk in chunks:  # each band is a picture of its own rows
        band = Image.open(io.BytesIO(download(api, user, job, chunk["result"]["artifact"])))
        assert band.size == (48, chunk["end"] - chunk["start"] + 1)


def test_a_demo_mandelbrot_has_demo_artifacts_and_demo_maxima(api):
    response = api.post("/jobs/demo", json={"kind": "mandelbrot", "params": {"width": 32, "height": 16}, "chunks": 2})
    assert response.status_code == 202, response.text
    job = wait_for_job(api, f"/jobs/demo/{response.json()['job_id']}")
    assert job["status"] == "completed", job["detail"]
    png = api.get(f"/jobs/demo/{job['job_id']}/artifacts/mandelbrot.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (32, 16)
    big = api.post("/jobs/demo", json={"kind": "mandelbrot", "params": {"width": 4096, "height": 16}})
    assert big.status_code == 422 and big.json()["errors"][0]["field"] == "params.width"
    closed = api.post("/jobs/demo", json={"kind": "word_count", "params": {"upload_id": "0" * 32}})
    assert closed.status_code == 422 and "not open to demo jobs" in closed.json()["detail"]


def test_word_count_of_an_upload_is_exact_against_counter(api, user):
    data = TEXT.encode()
    info = upload(api, user, "book.txt", data, "text/plain")
    assert info["size"] == len(data)
    job = run(api, user, {"kind": "word_count", "params": {"upload_id": info["upload_id"], "top_k": 5}, "chunks": 4})
    assert job["status"] == "completed", job["detail"]
    expected = Counter(re.findall(r"\w+", TEXT.casefold()))
    result = job["result"]
    assert result["total_words"] == sum(expected.values()) and result["distinct_words"] == len(expected)
    assert result["top"] == [[w, c] for w, c in sorted(expected.items(), key=lambda wc: (-wc[1], wc[0]))[:5]]
    chunks = api.get(f"/jobs/{job['job_id']}/chunks", headers=user["headers"]).json()["chunks"]
    assert len(chunks) == 4 and chunks[0]["start"] == 0 and chunks[-1]["end"] == len(data) - 1


def test_uploads_are_private_and_wrong_types_are_422(api, user, base_url):
    info = upload(api, user, "notes.txt", b"hello world\n", "text/plain")
    email = f"other-{info['upload_id'][:8]}@example.com"
    api.post("/auth/register", json={"email": email, "password": "another password"})
    token = api.post("/auth/login", json={"email": email, "password": "another password"}).json()["access_token"]
    other = {"headers": {"Authorization": f"Bearer {token}"}}
    body = {"kind": "word_count", "params": {"upload_id": info["upload_id"]}}
    theirs = api.post("/jobs", json=body, headers=other["headers"])
    assert theirs.status_code == 404 and "params.upload_id" in theirs.json()["detail"]
    assert api.get(f"/uploads/{info['upload_id']}", headers=other["headers"]).status_code == 404
    binary = upload(api, user, "image.png", image_bytes((8, 8)), "image/png")
    wrong = api.post("/jobs", json={"kind": "word_count", "params": {"upload_id": binary["upload_id"]}},
                     headers=user["headers"])
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "params.upload_id"
    not_zip = api.post("/jobs", json={"kind": "thumbnails", "params": {"upload_id": info["upload_id"]}},
                       headers=user["headers"])
    assert not_zip.status_code == 422 and not_zip.json()["errors"][0]["field"] == "params.upload_id"


def test_thumbnails_of_a_zip_with_bad_and_hostile_items(api, user):
    members = {
        "photos/wide.jpg": image_bytes((300, 120), "JPEG"),
        "photos/tall.png": image_bytes((90, 240), "PNG"),
        "small.png": image_bytes((20, 10), "PNG"),
        "broken.png": image_bytes((50, 50), "PNG")[:60],
        "../escape.png": image_bytes((30, 30), "PNG"),
        "readme.txt": b"not an image",
    }
    info = upload(api, user, "photos.zip", zip_bytes(members), "application/zip")
    job = run(api, user, {"kind": "thumbnails", "params": {"upload_id": info["upload_id"], "max_edge": 64}, "chunks": 3})
    assert job["status"] == "completed", job["detail"]
    result = job["result"]
    assert (result["images"], result["ok"], result["failed"]) == (6, 3, 3)
    assert {e["item"] for e in result["errors"]} == {"broken.png", "../escape.png", "readme.txt"}
    archive = zipfile.ZipFile(io.BytesIO(download(api, user, job, "thumbnails.zip")))
    thumbs = [name for name in archive.namelist() if name != "manifest.json"]
    assert len(thumbs) == 3 and not any(".." in name or name.startswith("/") for name in archive.namelist())
    sizes = {}
    for name in thumbs:
        with Image.open(io.BytesIO(archive.read(name))) as image:
            image.load()
            sizes[name] = image.size
    assert all(max(size) <= 64 for size in sizes.values())
    assert sorted(sizes.values()) == sorted([(64, 26), (24, 64), (20, 10)])


def test_a_zip_bomb_is_a_per_item_error_not_a_crash(api, user):
    info = upload(api, user, "bomb.zip", bomb_zip(20, others={"ok.txt": b"one two two\n"}), "application/zip")
    job = run(api, user, {"kind": "word_count", "params": {"upload_id": info["upload_id"]}, "chunks": 2})
    assert job["status"] == "completed", job["detail"]
    assert job["result"]["total_words"] == 3 and job["result"]["top"][0] == ["two", 2]
    assert [e["item"] for e in job["result"]["errors"]] == ["bomb.txt"]
