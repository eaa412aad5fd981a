"""The Ray task that runs one chunk of a job."""

from __future__ import annotations

import os
import time

import ray

from compute.kinds import ChunkSpec, get_kind
from compute.records import ChunkFact


@ray.remote(num_cpus=1)
def run_chunk(kind_name: str, job_id: str, spec: ChunkSpec, tracker=None) -> ChunkFact:
    """Compute one chunk and report it to the progress tracker as soon as it is done.

    Retried by Ray when the worker or node dies (``max_retries``); an exception raised by
    the kind is not retried and fails the job.
    """
    started = time.time()
    value = get_kind(kind_name).run_chunk(spec.start, spec.end)
    context = ray.get_runtime_context()
    fact = ChunkFact(
        index=spec.index,
        start=spec.start,
        end=spec.end,
        status="completed",
        result=value,
        node_id=context.get_node_id(),
        worker_pid=os.getpid(),
        started_at=started,
        ended_at=time.time(),
    )
    if tracker is not None:
        tracker.chunk_done.remote(job_id, fact)  # fire and forget: the runner has the result too
    return fact
