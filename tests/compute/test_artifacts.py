"""The artifact store (compute/artifacts.py) on a folder and on fsspec's in-memory filesystem: writing
(bytes and streamed files), listing, opening, replacing, copying, deleting, the per-job cap, names,
uploads (commit, abort, facts) and the sweep. Plain Python: fast tier."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from dataclasses import asdict

import pytest

from compute.artifacts import (
    MAX_NAME_LENGTH,
    ArtifactError,
    ArtifactStore,
    ArtifactTooLarge,
    check_name,
)

JOB, OTHER = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture(params=["folder", "memory"])
def store(request, tmp_path) -> ArtifactStore:
    if request.param == "folder":
        yield ArtifactStore(str(tmp_path / "store"), max_job_bytes=1 << 20)
        return
    url = f"memory://artifacts-{uuid.uuid4().hex}"
    yield ArtifactStore(url, max_job_bytes=1 << 20)
    store = ArtifactStore(url)
    if store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


def read(store: ArtifactStore, job_id: str, name: str) -> bytes:
    with store.open_artifact(job_id, name) as f:
        return f.read()


# -- job artifacts ------------------------------------------------------------------------------

def test_write_list_and_open(store):
    data = os.urandom(3000)
    info = store.write_artifact(JOB, "bands/00001.png", data, "image/png")
    assert (info.name, info.size, info.content_type) == ("bands/00001.png", 3000, "image/png")
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.created_at > 0
    store.write_artifact(JOB, "a.json", b"{}", "application/json")
    assert [i.name for i in store.list_artifacts(JOB)] == ["a.json", "bands/00001.png"]
    assert store.artifact_info(JOB, "bands/00001.png") == info
    assert read(store, JOB, "bands/00001.png") == data
    assert store.job_bytes(JOB) == 3002
    assert store.list_artifacts(OTHER) == [] and store.artifact_info(OTHER, "a.json") is None


def test_a_file_object_is_streamed_in_blocks(store):
    data = os.urandom(2 * (1 << 20) // 3)
    reads = []

    class Source(io.BytesIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    info = store.write_artifact(JOB, "big.bin", Source(data))
    assert info.size == len(data) and read(store, JOB, "big.bin") == data
    assert all(size > 0 for size in reads)  # never read whole at once
    assert info.content_type == "application/octet-stream"


def test_writing_a_name_again_replaces_it(store):
    store.write_artifact(JOB, "out.txt", b"first")
    info = store.write_artifact(JOB, "out.txt", b"second!", "text/plain")
    assert read(store, JOB, "out.txt") == b"second!"
    assert [i for i in store.list_artifacts(JOB)] == [info]
    assert store.job_bytes(JOB) == 7


def test_the_per_job_cap(store):
    store.write_artifact(JOB, "a.bin", b"x" * (600 * 1024))
    with pytest.raises(ArtifactTooLarge, match="MAX_ARTIFACT_BYTES_PER_JOB"):
        store.write_artifact(JOB, "b.bin", io.BytesIO(b"y" * (500 * 1024)))
    assert store.artifact_info(JOB, "b.bin") is None
    assert not store.fs.exists(f"{store.root}/jobs/{JOB}/b.bin")  # the partial file is gone
    # replacing an artifact counts its old size as free
    store.write_artifact(JOB, "a.bin", b"z" * (1 << 20))
    assert store.job_bytes(JOB) == 1 << 20
    # another job has its own budget
    store.write_artifact(OTHER, "c.bin", b"w" * (1 << 20))


@pytest.mark.parametrize("name", [
    "../escape", "a/../../b", "/abs", ".hidden", "a/.meta/x", "a//b", "a/", "", "a\\b", "a b", "é.txt",
    "a\x00b", "x" * (MAX_NAME_LENGTH + 1), "..", ".", "a/./b",
])
def test_bad_names_are_refused(store, name):
    with pytest.raises(ArtifactError):
        check_name(name)
    with pytest.raises(ArtifactError):
        store.write_artifact(JOB, name, b"x")
    with pytest.raises(ArtifactError):
        store.artifact_info(JOB, name)
    with pytest.raises(ArtifactError):
        store.open_artifact(JOB, name)
    assert store.list_artifacts(JOB) == []


def test_good_names():
    for name in ("a", "a.b", "_x-y.z", "bands/00003.png", "a/b/c.tar.gz", "x" * MAX_NAME_LENGTH, "a.", "-"):
        assert check_name(name) == name
    with pytest.raises(ArtifactError):
        check_name(None)  # type: ignore[arg-type]


def test_opening_an_unknown_artifact(store):
    with pytest.raises(FileNotFoundError):
        store.open_artifact(JOB, "missing.bin")


def test_copy_and_delete(store):
    store.write_artifact(JOB, "bands/0.png", b"band0", "image/png")
    store.write_artifact(JOB, "r.json", b"[1]", "application/json")
    assert store.copy_artifacts(JOB, OTHER) == 2
    assert store.list_artifacts(OTHER) == store.list_artifacts(JOB)
    assert read(store, OTHER, "bands/0.png") == b"band0"
    assert sorted(store.job_ids()) == sorted([JOB, OTHER])
    store.delete_job(JOB)
    assert store.list_artifacts(JOB) == [] and store.job_ids() == [OTHER]
    assert read(store, OTHER, "r.json") == b"[1]"
    store.delete_job(JOB)  # again: nothing to do
    assert store.copy_artifacts(JOB, str(uuid.uuid4())) == 0


# -- uploads ------------------------------------------------------------------------------------

def test_an_upload_is_seen_only_once_committed(store):
    writer = store.begin_upload("user-1", "words.txt", "text/plain")
    writer.write(b"hello ")
    assert store.upload_info(writer.upload_id) is None  # being written: not usable yet
    writer.write(b"world")
    info = writer.commit()
    assert (info.owner, info.size, info.filename, info.content_type) == ("user-1", 11, "words.txt", "text/plain")
    assert info.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert store.upload_info(info.upload_id) == info
    with store.open_upload(info.upload_id) as f:
        f.seek(6)
        assert f.read() == b"world"
    assert store.uploads() == [info]
    store.delete_upload(info.upload_id)
    assert store.upload_info(info.upload_id) is None and store.uploads() == []
    with pytest.raises(FileNotFoundError):
        store.open_upload(info.upload_id)


def test_an_aborted_upload_leaves_nothing(store):
    writer = store.begin_upload("user-1", "x.bin", "application/octet-stream")
    writer.write(os.urandom(1000))
    writer.abort()
    assert store.upload_info(writer.upload_id) is None
    assert store.fs.find(f"{store.root}/uploads") == []


@pytest.mark.parametrize("upload_id", ["", "../jobs", "A" * 32, "0" * 31, "0" * 33, "../../etc/passwd", "g" * 32])
def test_invalid_upload_ids(store, upload_id):
    assert store.upload_info(upload_id) is None
    with pytest.raises((ArtifactError, FileNotFoundError)):
        store.open_upload(upload_id)
    with pytest.raises(ArtifactError):
        store.delete_upload(upload_id)


def test_the_sweep_removes_gone_jobs_and_old_uploads(store):
    store.write_artifact(JOB, "kept.bin", b"k")
    store.write_artifact(OTHER, "gone.bin", b"g")
    infos = []
    for name in ("old.txt", "new.txt"):
        writer = store.begin_upload("u", name, "text/plain")
        writer.write(name.encode())
        infos.append(writer.commit())
    old, fresh = infos
    store._write_json(store._upload_path(old.upload_id) + ".json",  # written an hour ago
                      {**asdict(old), "created_at": old.created_at - 3600})
    unfinished = store.begin_upload("u", "partial.bin", "application/octet-stream")  # no facts: not swept
    unfinished.write(b"p")

    assert store.sweep(lambda job_id: job_id == JOB, max_upload_age=60) == 2
    assert store.job_ids() == [JOB] and store.list_artifacts(OTHER) == []
    assert store.upload_info(old.upload_id) is None
    assert store.upload_info(fresh.upload_id) == fresh
    assert store.sweep(lambda job_id: True, max_upload_age=60) == 0
    unfinished.abort()
