"""The Ray tasks of a job: one per chunk, and the kind's ``combine`` when it is more than a sum."""

from __future__ import annotations

import json
import os
import time
from functools import cache
from typing import Any

import ray

from compute.artifacts import ArtifactStore
from compute.config import get_compute_settings
from compute.kinds import get_kind
from compute.kinds.context import ChunkContext, JobContext
from compute.storage.chunk_progress import chunk_progress


class ChunkFailed(Exception):
    """A chunk that raised (after its retries): the message names the error and the attempts."""


class OutputTooLarge(Exception):
    pass


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


def describe_error(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def check_output_size(value: Any, what: str, limit: int) -> None:
    """Outputs are stored as JSON in Redis: a bigger one belongs in an artifact."""
    try:
        size = len(json.dumps(value, separators=(",", ":")))
    except (TypeError, ValueError) as exc:
        raise OutputTooLarge(f"{what} is not JSON ({exc}); return JSON values, write files as artifacts") from None
    if size > limit:
        raise OutputTooLarge(f"{what} is {size:,} bytes of JSON, over MAX_RESULT_BYTES ({limit:,}); "
                             "write large outputs as an artifact (ctx.write_artifact) and return its name")


def compute_chunk(kind_name: str, job_id: str, index: int, chunk_input: Any, *, title: bool = True) -> dict:
    """Compute one chunk and return what happened (``ChunkFact`` fields): the runner collects it
    and reports progress.

    The kind's retry policy retries its transient exceptions here, with backoff, recording every
    attempt; Ray retries the task only when its worker or node dies (``max_retries``). Any other
    exception fails the job. The task calls no actor itself (an actor call per chunk costs Ray's
    task rate dearly: bench/README.md).
    """
    if title:  # a worker of its own (not the lane's threads)
        _show_in_process_title(job_id, index)
    settings = get_compute_settings()
    kind = get_kind(kind_name)
    progress = chunk_progress(settings.redis_url, settings.redis_key_prefix, settings.job_ttl_seconds)
    ctx = ChunkContext(job_id, ArtifactStore.from_settings(settings), index=index,
                       report=lambda fraction: progress.report(job_id, index, fraction))
    attempts: list[dict] = []
    try:
        for attempt in kind.retry.retrying():
            with attempt:
                ctx.attempt = attempt.retry_state.attempt_number
                started = time.time()
                try:
                    value = kind.run_chunk(chunk_input, ctx)
                except Exception as exc:
                    attempts.append({"started_at": started, "ended_at": time.time(), "error": describe_error(exc)})
                    raise
        check_output_size(value, f"chunk {index}'s output", settings.max_result_bytes)
    except Exception as exc:
        tries = f" after {len(attempts)} attempts" if len(attempts) > 1 else ""
        raise ChunkFailed(f"{describe_error(exc)}{tries}") from None
    attempts.append({"started_at": started, "ended_at": time.time(), "error": None})
    fact = {"index": index, "status": "completed", "result": value, "node_id": _node_id(),
            "worker_pid": os.getpid(), "started_at": attempts[0]["started_at"], "ended_at": time.time(),
            "attempts": attempts}
    if isinstance(chunk_input, dict):
        fact |= {"start": chunk_input.get("start"), "end": chunk_input.get("end")}
    return fact


run_chunk = ray.remote(num_cpus=1)(compute_chunk)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class InteractiveLane:
    """The scheduler's interactive lane (compute/scheduler.py): a long-lived process that runs chunks
    of high-priority jobs in its threads, needing no CPU of its own, so a demo job never waits for a
    busy CPU to free (the OS time-slices it with the chunks already running) nor for a worker to start."""

    def run(self, kind_name: str, job_id: str, index: int, chunk_input: Any) -> dict:
        return compute_chunk(kind_name, job_id, index, chunk_input, title=False)


def combine_outputs(kind_name: str, job_id: str, outputs: list) -> Any:
    """The kind's ``combine`` and the result's size check (in a task, or in the runner for sums)."""
    settings = get_compute_settings()
    result = get_kind(kind_name).combine(outputs, JobContext(job_id, ArtifactStore.from_settings(settings)))
    check_output_size(result, "the job's result", settings.max_result_bytes)
    return result


combine_task = ray.remote(num_cpus=1, max_retries=2)(combine_outputs)


@ray.remote(num_cpus=1)
def warm_up() -> int:
    """Makes Ray start a worker process, so a job's first chunk need not wait for one; it lingers a
    moment so that each of the concurrent warm-up tasks gets a process of its own."""
    time.sleep(0.2)
    return os.getpid()
