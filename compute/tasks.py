"""The Ray task that runs one chunk of a job."""

from __future__ import annotations

import os
import time
from functools import cache

import ray

from compute.kinds import get_kind


@cache
def _node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def _show_in_process_title(job_id: str, index: int) -> None:
    """Title the worker ``ray::chunk:<job>:<index>`` while it runs the chunk (``ps`` and ``top`` show
    which job a worker is busy with); the task itself is named per kind only, see runner.py."""
    try:
        ray._raylet.setproctitle(f"ray::chunk:{job_id}:{index}")
    except AttributeError:  # a Ray without it: the title stays ray::chunk:<kind>
        pass


@ray.remote(num_cpus=1)
def run_chunk(kind_name: str, job_id: str, index: int, start: int, end: int) -> dict:
    """Compute one chunk and return what happened (``ChunkFact`` fields): the runner collects it
    and reports progress.

    Retried by Ray when the worker or node dies (``max_retries``); an exception raised by
    the kind is not retried and fails the job. The task calls no actor itself (an actor call per
    chunk costs Ray's task rate dearly: bench/README.md). Arguments and result are plain ints and a
    dict, which Ray serialises with msgpack instead of pickle.
    """
    _show_in_process_title(job_id, index)
    started = time.time()
    value = get_kind(kind_name).run_chunk(start, end)
    return {"index": index, "start": start, "end": end, "status": "completed", "result": value,
            "node_id": _node_id(), "worker_pid": os.getpid(), "started_at": started, "ended_at": time.time()}


@ray.remote(num_cpus=1)
def warm_up() -> int:
    """Makes Ray start a worker process, so a job's first chunk need not wait for one; it lingers a
    moment so that each of the concurrent warm-up tasks gets a process of its own."""
    time.sleep(0.2)
    return os.getpid()
