"""The service's settings, read from the environment (every variable is listed in the README).

One settings model: ``ComputeSettings`` is the section every process needs (API replicas, the
runner actor, chunk workers, ``cluster.batch``); the HTTP edge's ``serve_app.settings.Settings``
extends it with what only the edge reads. Each variable is declared once, here or there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / ".data"


@dataclass(frozen=True)
class JobLimits:
    """How big one job may be, and how many a user may have running (0: no limit)."""

    max_n: int
    max_chunks: int
    max_active: int = 0
    demo: bool = False  # anonymous demo jobs: only kinds open to them (JobKind.demo), within their demo_max

    def hints(self) -> dict[str, str]:
        return {"n": f"allowed: 1 to {self.max_n:,}", "chunks": f"allowed: 1 to {self.max_chunks:,}"}


class ComputeSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    # Every Redis key and channel of the service starts with this (compute/storage/keys.py), so
    # services sharing a Redis stay apart; "" reads the unprefixed keys of earlier versions.
    redis_key_prefix: str = Field("rayjobs:", alias="REDIS_KEY_PREFIX")
    job_ttl_seconds: int = Field(24 * 3600, alias="JOB_TTL_SECONDS", ge=60)
    # Per-job wall-clock budget; 0 means each kind's own default.
    job_timeout_seconds: float = Field(0, alias="JOB_TIMEOUT_SECONDS", ge=0)
    chunk_max_retries: int = Field(3, alias="CHUNK_MAX_RETRIES", ge=0)
    ray_namespace: str = Field("ray-jobs", alias="RAY_NAMESPACE")
    # A completed job of a deterministic kind answers the same owner's same kind, n and chunks this
    # long (a completed copy, `cached: true`); 0 switches the cache off.
    result_cache_seconds: int = Field(3600, alias="RESULT_CACHE_SECONDS", ge=0)
    # Extra job-kind plug-in modules (comma-separated import paths) loaded besides compute.kinds.*
    extra_job_kind_modules: str = Field("", alias="EXTRA_JOB_KIND_MODULES")

    # Job limits: enforced by compute.submission for every way in (HTTP, demo, cluster.batch); the API
    # schema, its docs and the web UI (GET /kinds) all read them from here.
    demo_max_n: int = Field(10_000, alias="DEMO_MAX_N", ge=1)
    demo_max_chunks: int = Field(8, alias="DEMO_MAX_CHUNKS", ge=1)
    max_n: int = Field(1_000_000_000, alias="MAX_N", ge=1)
    max_chunks: int = Field(1_000, alias="MAX_CHUNKS", ge=1)
    max_active_jobs_per_user: int = Field(4, alias="MAX_ACTIVE_JOBS_PER_USER", ge=1)

    # Outputs: a job's result (and each chunk's) as JSON is at most this big; bigger outputs are
    # artifacts, files in the artifact store (any fsspec URL; a shared one when the cluster has several
    # machines), which expire with their job. Uploads (input files) live there too.
    max_result_bytes: int = Field(1 << 20, alias="MAX_RESULT_BYTES", ge=1024)
    artifact_store_url: str = Field(str(DEFAULT_DATA_DIR / "artifacts"), alias="ARTIFACT_STORE_URL")
    max_artifact_bytes_per_job: int = Field(1 << 30, alias="MAX_ARTIFACT_BYTES_PER_JOB", ge=1024)
    # Archives inside uploads (word_count, thumbnails): caps against zip bombs.
    max_archive_members: int = Field(10_000, alias="MAX_ARCHIVE_MEMBERS", ge=1)
    max_archive_member_bytes: int = Field(256 << 20, alias="MAX_ARCHIVE_MEMBER_BYTES", ge=1024)
    max_archive_ratio: float = Field(200.0, alias="MAX_ARCHIVE_RATIO", ge=1)

    # Scheduling (compute/scheduler.py): "fair" (priorities, fair share between owners, admission
    # control) or "fifo" (every chunk into Ray at once, as earlier versions did).
    scheduler: Literal["fair", "fifo"] = Field("fair", alias="SCHEDULER")
    # Chunk tasks in Ray at once, over all runner shards; 0: one per CPU plus ~0.1 s of queued work per CPU
    # at the chunk run time of the slowest queued job (scheduler.default_budget), following nodes as they join and
    # leave. The rest wait in the service's queue.
    max_inflight_chunks: int = Field(0, alias="MAX_INFLIGHT_CHUNKS", ge=0)
    # A job that has had no chunk launched for this long counts one priority level higher (low never starves).
    scheduler_aging_seconds: float = Field(10.0, alias="SCHEDULER_AGING_SECONDS", gt=0)
    # Extra slots for chunks of small (at most DEMO_MAX_CHUNKS) high-priority jobs that need only CPUs; 0: none.
    interactive_slots: int = Field(2, alias="INTERACTIVE_SLOTS", ge=0)

    # Runner actors (shards), each running the jobs hashed to it with its share of the in-flight budget.
    runner_shards: int = Field(1, alias="RUNNER_SHARDS", ge=1, le=64)
    # A runner holds each job's lease this long and renews it every third of it; a runner that died
    # leaves its jobs to its restarted self (or another shard) once their leases expire.
    runner_lease_seconds: float = Field(15.0, alias="RUNNER_LEASE_SECONDS", ge=1)

    @property
    def job_limits(self) -> JobLimits:
        return JobLimits(self.max_n, self.max_chunks, self.max_active_jobs_per_user)

    @property
    def demo_limits(self) -> JobLimits:
        return JobLimits(self.demo_max_n, self.demo_max_chunks, demo=True)


@lru_cache
def get_compute_settings() -> ComputeSettings:
    return ComputeSettings()
