"""The progress tracker: a long-lived actor that records finished chunks as jobs run.

One detached actor serves every job (a per-job actor would cost a worker process per job). The
runner sends it the chunks that finished since its last report, at most every
``PROGRESS_INTERVAL_SECONDS`` per job; each report is one atomic Redis update, which also
publishes the change for live views. The Redis writes happen here, off the runner's event loop.
"""

from __future__ import annotations

import logging

import ray

from compute.config import get_compute_settings
from compute.records import ChunkFact
from compute.storage.jobs import JobStore, RedisError

TRACKER_NAME = "progress-tracker"
PROGRESS_INTERVAL_SECONDS = 0.05
log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=3)
class ProgressTracker:
    def __init__(self):
        settings = get_compute_settings()
        self.store = JobStore(settings.redis_url, settings.job_ttl_seconds, key_prefix=settings.redis_key_prefix)
        self.reports = 0

    async def chunks_done(self, job_id: str, facts: list[dict]) -> int:
        """Record finished chunks (``ChunkFact`` fields as plain dicts); returns the completed count."""
        self.reports += 1
        try:
            return await self.store.record_chunks_done(job_id, map(ChunkFact.model_validate, facts))
        except RedisError as exc:  # the runner's final write still records the chunks
            log.warning("could not record %d chunk(s) of job %s: %s", len(facts), job_id, exc)
            return 0

    async def report_count(self) -> int:
        return self.reports


def get_tracker():
    namespace = get_compute_settings().ray_namespace
    return ProgressTracker.options(
        name=TRACKER_NAME, namespace=namespace, lifetime="detached", get_if_exists=True
    ).remote()
