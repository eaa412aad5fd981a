"""A real artifact store on disk and helpers to call a kind's split, chunks and combine directly
(no Ray, no Redis: the fast tier)."""

from __future__ import annotations

import pytest

from compute.artifacts import ArtifactStore
from compute.config import get_compute_settings
from compute.kinds.context import ChunkContext, JobContext


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def upload(store):
    """``upload(data, filename)`` -> upload_id of a committed upload holding ``data``."""
    def make(data: bytes, filename: str = "upload.bin") -> str:
        writer = store.begin_upload("owner@example.com", filename, "application/octet-stream")
        for start in range(0, len(data), 1 << 20):
            writer.write(data[start:start + (1 << 20)])
        return writer.commit().upload_id
    return make


@pytest.fixture
def caps(monkeypatch):
    """``caps(MAX_ARCHIVE_MEMBERS=3, ...)``: settings from the environment, as workers read them."""
    def set_caps(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))
        get_compute_settings.cache_clear()
    yield set_caps
    get_compute_settings.cache_clear()


class Job:
    """One job of ``kind`` run in this process the way the runner and its tasks would run it."""

    def __init__(self, kind, store: ArtifactStore, job_id: str = "job-1"):
        self.kind, self.store, self.job_id = kind, store, job_id
        self.ctx = JobContext(job_id, store)
        self.progress: dict[int, list[float]] = {}

    def split(self, chunks: int, **params) -> list:
        return self.kind.split(self.kind.Params.model_validate(params), chunks, self.ctx)

    def chunk(self, index: int, chunk_input):
        ctx = ChunkContext(self.job_id, self.store, index=index,
                           report=lambda fraction: self.progress.setdefault(index, []).append(fraction))
        return self.kind.run_chunk(chunk_input, ctx)

    def run(self, chunks: int, **params):
        outputs = [self.chunk(i, chunk_input) for i, chunk_input in enumerate(self.split(chunks, **params))]
        return self.kind.combine(outputs, self.ctx), outputs

    def artifact(self, name: str) -> bytes:
        with self.store.open_artifact(self.job_id, name) as f:
            return f.read()
