"""The progress tracker: a long-lived actor that receives chunk completions and records them.

One detached actor serves every job (a per-job actor would cost a worker process per job).
Each report becomes one atomic Redis update, which also publishes the change for live views.
"""

from __future__ import annotations

import logging

import ray

from compute.config import get_compute_settings
from compute.records import ChunkFact
from compute.store import JobStore, RedisError

TRACKER_NAME = "progress-tracker"
log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=3)
class ProgressTracker:
    def __init__(self):
        settings = get_compute_settings()
        self.store = JobStore(settings.redis_url, settings.job_ttl_seconds)
        self.reports = 0

    async def chunk_done(self, job_id: str, fact: ChunkFact) -> int:
        self.reports += 1
        try:
            return await self.store.record_chunk_done(job_id, fact)
        except RedisError as exc:  # the runner's final write still records the chunk
            log.warning("could not record chunk %s of job %s: %s", fact.index, job_id, exc)
            return 0

    async def report_count(self) -> int:
        return self.reports


def get_tracker():
    namespace = get_compute_settings().ray_namespace
    return ProgressTracker.options(
        name=TRACKER_NAME, namespace=namespace, lifetime="detached", get_if_exists=True
    ).remote()
