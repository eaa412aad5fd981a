"""What a kind's ``split``, ``run_chunk`` and ``combine`` may use besides their inputs: the job's
artifacts, the owner's uploads and (inside a chunk) progress reports.

The same context works in a Ray worker, the runner and an API replica: everything goes through the
artifact store (``compute.artifacts``, any fsspec filesystem) and, for progress, Redis
(``compute.storage.chunk_progress``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Optional, Union

from compute.artifacts import ArtifactInfo, ArtifactStore, UploadInfo

PROGRESS_INTERVAL_SECONDS = 0.5


@dataclass
class JobContext:
    job_id: str
    store: ArtifactStore

    def write_artifact(self, name: str, data: Union[bytes, BinaryIO],
                       content_type: str = "application/octet-stream") -> ArtifactInfo:
        """Store a file output of the job (bytes, or a binary file streamed); listed and downloadable
        at ``GET /jobs/{id}/artifacts``; expires with the job."""
        return self.store.write_artifact(self.job_id, name, data, content_type)

    def open_artifact(self, name: str) -> BinaryIO:
        return self.store.open_artifact(self.job_id, name)

    def open_upload(self, upload_id: str) -> BinaryIO:
        """An upload named by the params, as a seekable binary file (its owner was checked on submission)."""
        return self.store.open_upload(upload_id)

    def upload_info(self, upload_id: str) -> UploadInfo:
        info = self.store.upload_info(upload_id)
        if info is None:
            raise FileNotFoundError(f"upload {upload_id} is gone (uploads expire after JOB_TTL_SECONDS)")
        return info


@dataclass
class ChunkContext(JobContext):
    index: int = 0
    attempt: int = 1
    report: Optional[Callable[[float], None]] = None
    _last_report: float = field(default=0.0, repr=False)

    def progress(self, fraction: float) -> None:
        """How far this chunk is (0..1): shown on the chunk while it runs; written at most every 0.5 s."""
        now = time.monotonic()
        if self.report is None or now - self._last_report < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_report = now
        self.report(min(1.0, max(0.0, float(fraction))))
