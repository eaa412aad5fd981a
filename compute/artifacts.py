"""The artifact store: jobs' file outputs and users' uploads, in any filesystem fsspec knows.

``ARTIFACT_STORE_URL`` names it: a folder on one machine (the default, under the data dir), or a
filesystem every node shares (NFS, ``s3://``, ``gs://``...) on a cluster. Layout::

    jobs/<job_id>/<name>            an artifact          jobs/<job_id>/.meta/<name>.json  its facts
    uploads/<upload_id>             an upload's bytes    uploads/<upload_id>.json         its facts

The facts (size, sha256, content type, owner) sit next to the data, in the store itself, so every
node and replica reads the same truth without a second service; data is always written before its
facts, so a listed file is complete. Job folders and uploads expire with the job records
(``sweep``, run by the job runner).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import BinaryIO, Iterable, Optional, Union

import fsspec

from compute.config import ComputeSettings, get_compute_settings

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
MAX_NAME_LENGTH = 200
COPY_BLOCK = 1 << 20
UPLOAD_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


class ArtifactError(Exception):
    """An artifact or upload that cannot be written or read (the message says why)."""


class ArtifactTooLarge(ArtifactError):
    pass


@dataclass(frozen=True)
class ArtifactInfo:
    name: str
    size: int
    content_type: str
    sha256: str
    created_at: float


@dataclass(frozen=True)
class UploadInfo:
    upload_id: str
    owner: str
    size: int
    sha256: str
    filename: str
    content_type: str
    created_at: float


def check_name(name: str) -> str:
    """An artifact name: ``/``-separated segments of letters, digits, ``._-``, none starting with a dot."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        raise ArtifactError(f"invalid artifact name {name!r}: use letters, digits, '.', '_', '-' and '/' "
                            f"(no segment starting with '.', at most {MAX_NAME_LENGTH} characters)")
    return name


def _chunks_of(data: Union[bytes, BinaryIO]) -> Iterable[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
        return
    while block := data.read(COPY_BLOCK):
        yield block


class ArtifactStore:
    def __init__(self, url: str, max_job_bytes: int = 1 << 30):
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self.max_job_bytes = max_job_bytes

    @classmethod
    def from_settings(cls, settings: Optional[ComputeSettings] = None) -> "ArtifactStore":
        settings = settings or get_compute_settings()
        return _cached_store(settings.artifact_store_url, settings.max_artifact_bytes_per_job)

    # -- paths --------------------------------------------------------------------------------

    def _job_dir(self, job_id: str) -> str:
        return f"{self.root}/jobs/{job_id}"

    def _data_path(self, job_id: str, name: str) -> str:
        return f"{self._job_dir(job_id)}/{check_name(name)}"

    def _meta_path(self, job_id: str, name: str) -> str:
        return f"{self._job_dir(job_id)}/.meta/{check_name(name)}.json"

    def _upload_path(self, upload_id: str) -> str:
        if not UPLOAD_ID_PATTERN.match(upload_id or ""):
            raise ArtifactError(f"invalid upload id {upload_id!r}")
        return f"{self.root}/uploads/{upload_id}"

    # -- job artifacts ------------------------------------------------------------------------

    def write_artifact(self, job_id: str, name: str, data: Union[bytes, BinaryIO],
                       content_type: str = "application/octet-stream") -> ArtifactInfo:
        """Store ``data`` (bytes or a binary file, streamed) as the job's artifact ``name``, replacing
        one of that name; raises ArtifactTooLarge when the job's artifacts would pass the cap."""
        path, meta = self._data_path(job_id, name), self._meta_path(job_id, name)
        previous = self.artifact_info(job_id, name)
        budget = self.max_job_bytes - self.job_bytes(job_id) + (previous.size if previous else 0)
        digest, size = hashlib.sha256(), 0
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        try:
            with self.fs.open(path, "wb") as out:
                for block in _chunks_of(data):
                    size += len(block)
                    if size > budget:
                        raise ArtifactTooLarge(
                            f"artifact {name!r} would take job {job_id}'s artifacts past "
                            f"MAX_ARTIFACT_BYTES_PER_JOB ({self.max_job_bytes:,} bytes)")
                    digest.update(block)
                    out.write(block)
        except BaseException:
            self.fs.rm(path) if self.fs.exists(path) else None
            raise
        info = ArtifactInfo(name, size, content_type, digest.hexdigest(), time.time())
        self._write_json(meta, asdict(info))
        return info

    def artifact_info(self, job_id: str, name: str) -> Optional[ArtifactInfo]:
        try:
            return ArtifactInfo(**self._read_json(self._meta_path(job_id, name)))
        except FileNotFoundError:
            return None

    def list_artifacts(self, job_id: str) -> list[ArtifactInfo]:
        meta_dir = f"{self._job_dir(job_id)}/.meta"
        try:
            paths = self.fs.find(meta_dir)
        except FileNotFoundError:
            return []
        infos = []
        for path in paths:
            if path.endswith(".json"):
                try:
                    infos.append(ArtifactInfo(**self._read_json(path)))
                except FileNotFoundError:  # deleted meanwhile
                    continue
        return sorted(infos, key=lambda info: info.name)

    def job_bytes(self, job_id: str) -> int:
        return sum(info.size for info in self.list_artifacts(job_id))

    def open_artifact(self, job_id: str, name: str) -> BinaryIO:
        if self.artifact_info(job_id, name) is None:
            raise FileNotFoundError(f"job {job_id} has no artifact {name!r}")
        return self.fs.open(self._data_path(job_id, name), "rb")

    def copy_artifacts(self, source_job_id: str, target_job_id: str) -> int:
        """Copy every artifact of one job to another (a retried job reuses its chunks' outputs)."""
        copied = 0
        for info in self.list_artifacts(source_job_id):
            target = self._data_path(target_job_id, info.name)
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.copy(self._data_path(source_job_id, info.name), target)
            self._write_json(self._meta_path(target_job_id, info.name), asdict(info))
            copied += 1
        return copied

    def delete_job(self, job_id: str) -> None:
        path = self._job_dir(job_id)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def job_ids(self) -> list[str]:
        try:
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(f"{self.root}/jobs", detail=False)]
        except FileNotFoundError:
            return []

    # -- uploads ------------------------------------------------------------------------------

    def begin_upload(self, owner: str, filename: str, content_type: str) -> "UploadWriter":
        return UploadWriter(self, uuid.uuid4().hex, owner, filename, content_type)

    def upload_info(self, upload_id: str) -> Optional[UploadInfo]:
        try:
            return UploadInfo(**self._read_json(self._upload_path(upload_id) + ".json"))
        except (FileNotFoundError, ArtifactError):
            return None

    def open_upload(self, upload_id: str) -> BinaryIO:
        if self.upload_info(upload_id) is None:
            raise FileNotFoundError(f"no upload {upload_id!r}")
        return self.fs.open(self._upload_path(upload_id), "rb")

    def delete_upload(self, upload_id: str) -> None:
        path = self._upload_path(upload_id)
        for target in (path + ".json", path):  # facts first: a half-deleted upload is not listed
            if self.fs.exists(target):
                self.fs.rm(target)

    def uploads(self) -> list[UploadInfo]:
        try:
            paths = self.fs.ls(f"{self.root}/uploads", detail=False)
        except FileNotFoundError:
            return []
        found = []
        for path in paths:
            if path.endswith(".json"):
                info = self.upload_info(path.rsplit("/", 1)[-1][:-5])
                if info is not None:
                    found.append(info)
        return found

    # -- expiry -------------------------------------------------------------------------------

    def sweep(self, job_exists, max_upload_age: float, now: Optional[float] = None) -> int:
        """Delete the folders of jobs ``job_exists(job_id)`` says are gone, and uploads older than
        ``max_upload_age`` seconds; returns how many were deleted."""
        now = time.time() if now is None else now
        removed = 0
        for job_id in self.job_ids():
            if not job_exists(job_id):
                self.delete_job(job_id)
                removed += 1
        for info in self.uploads():
            if now - info.created_at > max_upload_age:
                self.delete_upload(info.upload_id)
                removed += 1
        return removed

    # -- helpers ------------------------------------------------------------------------------

    def _write_json(self, path: str, value: dict) -> None:
        """Written aside, then moved into place: parallel chunks list each other's facts while they
        write theirs, and must never read a half-written file."""
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(temporary, "w") as out:
            json.dump(value, out)
        self.fs.mv(temporary, path)

    def _read_json(self, path: str) -> dict:
        with self.fs.open(path, "r") as f:
            return json.load(f)


class UploadWriter:
    """An upload being received: ``write`` blocks as they arrive, then ``commit`` (or ``abort``).
    Only a committed upload has facts, so only a complete one can be used."""

    def __init__(self, store: ArtifactStore, upload_id: str, owner: str, filename: str, content_type: str):
        self.store, self.upload_id, self.owner = store, upload_id, owner
        self.filename, self.content_type = filename, content_type
        self.path = store._upload_path(upload_id)
        store.fs.makedirs(self.path.rsplit("/", 1)[0], exist_ok=True)
        self._file = store.fs.open(self.path, "wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, block: bytes) -> None:
        self._digest.update(block)
        self.size += len(block)
        self._file.write(block)

    def commit(self) -> UploadInfo:
        self._file.close()
        info = UploadInfo(self.upload_id, self.owner, self.size, self._digest.hexdigest(), self.filename,
                          self.content_type, time.time())
        self.store._write_json(self.path + ".json", asdict(info))
        return info

    def abort(self) -> None:
        self._file.close()
        if self.store.fs.exists(self.path):
            self.store.fs.rm(self.path)


@lru_cache(maxsize=8)
def _cached_store(url: str, max_job_bytes: int) -> ArtifactStore:
    return ArtifactStore(url, max_job_bytes)
