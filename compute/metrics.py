"""Custom Ray metrics for the job service (``ray.util.metrics``), scraped through Ray's Prometheus endpoint.

Every Ray node runs a metrics agent that serves the metrics of all processes on that node at
``http://<node>:<metrics_export_port>/metrics`` (the port is in ``ray._private.worker._global_node``
on a driver, and in the dashboard's Prometheus service discovery file). Ray prefixes custom metric
names with ``ray_`` and adds ``_total`` to counters, so ``rayjobs_jobs_finished`` is scraped as
``ray_rayjobs_jobs_finished_total{kind="range_sum",status="completed",...}``.

Metric objects are created lazily, once per process, on first use: they must be created inside a
process connected to Ray (a driver, task or actor). Outside Ray every function here is a no-op, and a
metrics failure is logged once and never breaks a job.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Optional, Sequence

log = logging.getLogger(__name__)

PREFIX = "rayjobs_"

# Seconds. Chunks of the built-in kinds take milliseconds (small n) to a few minutes (n = 1e9 in few chunks).
CHUNK_DURATION_BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
# Jobs add scheduling and Redis round trips, and may wait for CPUs (or for the autoscaler) first.
JOB_DURATION_BOUNDARIES = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]

NAMES = {
    "jobs_submitted": PREFIX + "jobs_submitted",
    "jobs_finished": PREFIX + "jobs_finished",
    "chunks_completed": PREFIX + "chunks_completed",
    "chunk_duration": PREFIX + "chunk_duration_seconds",
    "job_duration": PREFIX + "job_duration_seconds",
    "active_jobs": PREFIX + "active_jobs",
    "queued_chunks": PREFIX + "queued_chunks",
}


@dataclass
class _Metrics:
    jobs_submitted: Any
    jobs_finished: Any
    chunks_completed: Any
    chunk_duration: Any
    job_duration: Any
    active_jobs: Any
    queued_chunks: Any


_lock = threading.Lock()
_metrics: Optional[_Metrics] = None
_owner_pid: Optional[int] = None
_failed = False


def _create() -> _Metrics:
    from ray.util.metrics import Counter, Gauge, Histogram

    return _Metrics(
        jobs_submitted=Counter(NAMES["jobs_submitted"], "Jobs handed to the job runner, by kind.",
                               tag_keys=("kind",)),
        jobs_finished=Counter(NAMES["jobs_finished"], "Jobs that reached a terminal state, by kind and status.",
                              tag_keys=("kind", "status")),
        chunks_completed=Counter(NAMES["chunks_completed"], "Chunks computed successfully, by kind.",
                                 tag_keys=("kind",)),
        chunk_duration=Histogram(NAMES["chunk_duration"], "Wall-clock time of one chunk task, in seconds.",
                                 boundaries=CHUNK_DURATION_BOUNDARIES, tag_keys=("kind",)),
        job_duration=Histogram(NAMES["job_duration"], "Time from a job's creation to its terminal state, "
                               "in seconds, by kind and status.", boundaries=JOB_DURATION_BOUNDARIES,
                               tag_keys=("kind", "status")),
        active_jobs=Gauge(NAMES["active_jobs"], "Jobs the job runner is running right now."),
        queued_chunks=Gauge(NAMES["queued_chunks"], "Chunks waiting in the scheduler's queue, by job priority.",
                            tag_keys=("priority",)),
    )


def _get() -> Optional[_Metrics]:
    """The metric objects of this process, created on first use; None outside Ray or after a failure."""
    global _metrics, _owner_pid, _failed
    if _metrics is not None and _owner_pid == os.getpid():
        return _metrics
    if _failed:
        return None
    import ray

    if not ray.is_initialized():
        return None
    with _lock:
        if _metrics is None or _owner_pid != os.getpid():
            try:
                _metrics = _create()
                _owner_pid = os.getpid()
            except Exception as exc:  # pragma: no cover - a broken metrics backend must not break jobs
                _failed = True
                log.warning("metrics disabled in this process: %s: %s", type(exc).__name__, exc)
                return None
    return _metrics


def _safely(action) -> None:
    metrics = _get()
    if metrics is None:
        return
    try:
        action(metrics)
    except Exception as exc:  # pragma: no cover - see _get
        log.warning("could not record a metric: %s: %s", type(exc).__name__, exc)


def job_submitted(kind: str) -> None:
    _safely(lambda m: m.jobs_submitted.inc(1, tags={"kind": kind}))


def job_finished(kind: str, status: str, duration_s: Optional[float] = None) -> None:
    """Count a job that reached ``status`` (completed/failed/cancelled) and observe how long it took."""
    status = getattr(status, "value", status)

    def record(m: _Metrics) -> None:
        m.jobs_finished.inc(1, tags={"kind": kind, "status": status})
        if duration_s is not None:
            m.job_duration.observe(max(0.0, float(duration_s)), tags={"kind": kind, "status": status})

    _safely(record)


def chunks_completed(kind: str, durations_s: Sequence[float]) -> None:
    """Count a batch of finished chunks (one counter update) and observe each one's duration."""
    def record(m: _Metrics) -> None:
        m.chunks_completed.inc(len(durations_s), tags={"kind": kind})
        for seconds in durations_s:
            m.chunk_duration.observe(max(0.0, float(seconds)), tags={"kind": kind})

    if durations_s:
        _safely(record)


def set_active_jobs(n: int) -> None:
    _safely(lambda m: m.active_jobs.set(n))


def set_queued_chunks(counts: dict[str, int]) -> None:
    def record(m: _Metrics) -> None:
        for priority, n in counts.items():
            m.queued_chunks.set(n, tags={"priority": priority})

    _safely(record)
