"""What the service remembers about a job and its chunks (kept in Redis by ``compute.storage.jobs``)."""

from __future__ import annotations

from enum import Enum
from typing import Any, Optional

from pydantic import BaseModel, Field


class JobStatus(str, Enum):
    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = {JobStatus.completed, JobStatus.failed, JobStatus.cancelled}


class Attempt(BaseModel):
    """One try of a chunk (a kind's retry policy may make several)."""

    started_at: float
    ended_at: float
    error: Optional[str] = None


class ChunkFact(BaseModel):
    """One chunk as it ran: where, when, and what it produced (any JSON value)."""

    index: int
    start: Optional[int] = None  # the chunk input's "start"/"end", when it has them (ranges, rows, bytes)
    end: Optional[int] = None
    status: str = "pending"
    result: Any = None
    node_id: Optional[str] = None
    worker_pid: Optional[int] = None
    started_at: Optional[float] = None
    ended_at: Optional[float] = None
    attempts: list[Attempt] = Field(default_factory=list)


class JobRecord(BaseModel):
    job_id: str
    owner: str
    kind: str
    params: dict[str, Any]
    chunks: int
    total_chunks: int
    status: JobStatus = JobStatus.pending
    completed_chunks: int = 0
    result: Any = None
    detail: Optional[str] = None
    cached: bool = False  # a completed copy of an earlier job's result (RESULT_CACHE_SECONDS)
    retry_of: Optional[str] = None  # the failed or cancelled job this one retries (POST /jobs/{id}/retry)
    priority: str = "normal"  # high, normal or low (compute/scheduler.py)
    queue_position: Optional[int] = None  # while pending: its place among the jobs waiting (1 = next)
    created_at: float
    started_at: Optional[float] = None
    completed_at: Optional[float] = None

    @property
    def n(self) -> Optional[int]:
        """The range kinds' ``n`` (the README's original job shape), else None."""
        n = self.params.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) else None

    @property
    def progress(self) -> float:
        if self.status is JobStatus.completed:
            return 1.0
        return round(self.completed_chunks / self.total_chunks, 4) if self.total_chunks else 0.0

    @property
    def duration_ms(self) -> Optional[int]:
        if self.started_at is None or self.completed_at is None:
            return None
        return max(0, round((self.completed_at - self.started_at) * 1000))
