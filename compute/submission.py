"""Accepting a job, for every way in (the HTTP routes and ``cluster.batch``): the input checks, the
atomic active-job limit, the pending record, and the hand-off to the runner.

The HTTP edge adds what only it has (idempotency keys, rate limits, status codes) around ``accept``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

from pydantic import BaseModel, ValidationError

from compute.artifacts import ArtifactStore
from compute.config import JobLimits
from compute.kinds import InvalidParams, JobKind, UnknownKind, get_kind, kind_names
from compute.kinds.context import JobContext
from compute.scheduler import PRIORITIES
from compute.records import JobRecord, JobStatus
from compute.storage.jobs import JobStore

log = logging.getLogger(__name__)
SUBMIT_TIMEOUT_SECONDS = 10


class Refused(Exception):
    """A job that was not accepted (the message says why, for the client)."""


class InvalidInput(Refused):
    def __init__(self, field: str, message: str, code: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.code = field, message, code


class TooManyActiveJobs(Refused):
    def __init__(self, limit: int):
        super().__init__(f"You already have {limit} active jobs (the limit); wait for one to finish or "
                         "cancel one.")
        self.limit = limit


class ClusterUnavailable(Refused):
    def __init__(self):
        super().__init__("The compute cluster (Ray) is unavailable; the job was not started.")


class UploadNotFound(Refused):
    def __init__(self, field: str):
        super().__init__(f"{field}: no such upload of yours (uploads expire after JOB_TTL_SECONDS).")
        self.field = field


class NotRetryable(Refused):
    pass


@dataclass(frozen=True)
class JobRequest:
    """A job as asked for, by any way in: a kind, its params (a dict or the kind's Params), chunks."""

    kind: str
    params: Any
    chunks: int
    legacy: bool = False  # the README's {n, chunks, kind} body: problems name its bare fields
    priority: str = "normal"  # high, normal or low (compute/scheduler.py)


@dataclass(frozen=True)
class PreparedJob:
    record: JobRecord
    inputs: list


def _field(request: JobRequest, name: str) -> str:
    return name if request.legacy else f"params.{name}"


def check(request: JobRequest, limits: JobLimits, owner: str,
          artifacts: Optional[ArtifactStore] = None) -> tuple[JobKind, BaseModel]:
    """The job's kind and validated params; raises InvalidInput naming the first field outside what
    is allowed, UploadNotFound for an upload that is not the owner's."""
    if request.priority not in PRIORITIES:
        raise InvalidInput("priority", f"must be one of: {', '.join(PRIORITIES)}", "invalid_priority")
    try:
        kind = get_kind(request.kind)
    except UnknownKind:
        raise InvalidInput("kind", f"unknown kind {request.kind!r}; choose one of: {', '.join(kind_names())}",
                           "unknown_kind") from None
    try:
        params = request.params if isinstance(request.params, kind.Params) else kind.Params.model_validate(
            request.params)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidInput(_field(request, where) if where else "params", error["msg"], error["type"]) from None
    n = getattr(params, "n", None)
    if isinstance(n, int) and not 1 <= n <= limits.max_n:
        raise InvalidInput(_field(request, "n"), f"must be between 1 and {limits.max_n:,} (got {n:,})",
                           "out_of_range")
    max_chunks = min(limits.max_chunks, kind.max_chunks or limits.max_chunks)
    if not 1 <= request.chunks <= max_chunks:
        raise InvalidInput("chunks", f"must be between 1 and {max_chunks:,} (got {request.chunks:,})",
                           "out_of_range")
    if limits.demo:
        if not kind.demo or kind.upload_fields:
            raise InvalidInput("kind", f"{kind.name} is not open to demo jobs: sign in and use POST /jobs",
                               "needs_account")
        for name, maximum in kind.demo_max.items():
            value = getattr(params, name)
            if value > maximum:
                raise InvalidInput(_field(request, name), f"at most {maximum:,} for demo jobs (got {value:,}); "
                                   "sign in for more", "out_of_range")
    for name in kind.upload_fields:
        info = (artifacts or ArtifactStore.from_settings()).upload_info(getattr(params, name))
        if info is None or info.owner != owner:
            raise UploadNotFound(_field(request, name))
    return kind, params


def prepare(owner: str, request: JobRequest, limits: JobLimits,
            artifacts: Optional[ArtifactStore] = None) -> PreparedJob:
    """The checked, not yet stored, pending record of a new job and its chunks' inputs (``split``
    runs here, once; it may read the params' uploads, so callers on an event loop run this in a
    thread for such kinds)."""
    kind, params = check(request, limits, owner, artifacts)
    job_id = str(uuid.uuid4())
    try:
        inputs = list(kind.split(params, request.chunks, JobContext(job_id, artifacts or ArtifactStore.from_settings())))
    except InvalidParams as exc:
        raise InvalidInput(_field(request, exc.field), exc.message, "invalid_params") from None
    if not inputs:
        raise InvalidInput("params", f"{kind.name} found nothing to compute in these params", "no_chunks")
    record = JobRecord(job_id=job_id, owner=owner, kind=kind.name, params=params.model_dump(mode="json"),
                       chunks=request.chunks, total_chunks=len(inputs), created_at=time.time(),
                       priority=request.priority)
    return PreparedJob(record, inputs)


HandOff = Callable[[str], Awaitable[None]]


def input_digest(record: JobRecord) -> str:
    """What makes two jobs of one owner the same computation (the result cache's key): the kind,
    the params (canonical JSON) and the chunks."""
    params = json.dumps(record.params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{record.kind}\0{params}\0{record.chunks}".encode()).hexdigest()[:32]


async def remember_result(store: JobStore, record: JobRecord, seconds: int) -> None:
    """After a job completed: let it answer repeats of its inputs for ``seconds`` (deterministic kinds)."""
    if seconds > 0 and not record.cached and get_kind(record.kind).deterministic:
        await store.remember_result(record, input_digest(record), seconds)


async def _cached_copy(store: JobStore, job: PreparedJob, *, index_owner: bool) -> Optional[JobRecord]:
    """Store and return a completed copy of the owner's cached result for these inputs, if there is
    one (with copies of its artifacts, which its result may name)."""
    record = job.record
    if not get_kind(record.kind).deterministic:
        return None
    original = await store.cached_result(record.owner, input_digest(record))
    if original is None or original.result is None:
        return None
    now = time.time()
    took = (original.completed_at or now) - (original.started_at or now)
    copy = record.model_copy(update={
        "status": JobStatus.completed, "result": original.result, "completed_chunks": record.total_chunks,
        "cached": True, "started_at": now - took, "completed_at": now,
        "detail": f"Result from the cache: the same as job {original.job_id}."})
    await asyncio.to_thread(ArtifactStore.from_settings().copy_artifacts, original.job_id, copy.job_id)
    await store.create_job(copy, inputs=job.inputs, index_owner=index_owner)
    return copy


async def accept(store: JobStore, hand_off: HandOff, job: PreparedJob, *, index_owner: bool,
                 max_active: int = 0, cache: bool = False, timeout: float = SUBMIT_TIMEOUT_SECONDS) -> JobRecord:
    """Store the pending job (unless its owner is at ``max_active``) and ``hand_off(job_id)`` to the
    runner (``AppContext.hand_off`` over HTTP, the runner actor's ``submit`` in ``cluster.batch``);
    returns the stored record. With ``cache``, a completed job of the owner with the same
    deterministic inputs answers instead: a completed copy is stored, nothing runs.

    A runner slow to acknowledge does not refuse the job: it is durable in Redis, the hand-off goes on
    in the background, and the runner's sweep starts it anyway. A cluster that cannot be reached
    fails the job visibly instead.
    """
    if cache:
        copy = await _cached_copy(store, job, index_owner=index_owner)
        if copy is not None:
            return copy
    if not await store.create_job(job.record, inputs=job.inputs, index_owner=index_owner, max_active=max_active):
        raise TooManyActiveJobs(max_active)
    return await _deliver(store, hand_off, job.record, timeout)


async def retry(store: JobStore, hand_off: HandOff, original: JobRecord, *, index_owner: bool, max_active: int = 0,
                artifacts: Optional[ArtifactStore] = None, timeout: float = SUBMIT_TIMEOUT_SECONDS) -> JobRecord:
    """Run a failed or cancelled job again as a new job (``retry_of``) that reuses the chunks that
    had completed (their facts, with their pids and times, and the job's artifacts are copied):
    only the missing chunks run."""
    if original.status not in (JobStatus.failed, JobStatus.cancelled):
        raise NotRetryable(f"Job is {original.status.value}; only failed or cancelled jobs can be retried.")
    kind = get_kind(original.kind)
    artifacts = artifacts or ArtifactStore.from_settings()
    inputs = await store.get_chunk_inputs(original.job_id)
    if inputs is None:
        inputs = kind.split(kind.Params.model_validate(original.params), original.chunks,
                            JobContext(original.job_id, artifacts))
    done = [f for f in (await store.get_chunk_facts(original.job_id)).values() if f.status == "completed"]
    record = JobRecord(job_id=str(uuid.uuid4()), owner=original.owner, kind=original.kind, params=original.params,
                       chunks=original.chunks, total_chunks=len(inputs), created_at=time.time(),
                       retry_of=original.job_id, priority=original.priority)
    await asyncio.to_thread(artifacts.copy_artifacts, original.job_id, record.job_id)
    if not await store.create_job(record, inputs=inputs, index_owner=index_owner, max_active=max_active):
        await asyncio.to_thread(artifacts.delete_job, record.job_id)
        raise TooManyActiveJobs(max_active)
    if done:
        await store.record_chunks_done(record.job_id, done)
    return await _deliver(store, hand_off, record, timeout)


async def _deliver(store: JobStore, hand_off: HandOff, record: JobRecord, timeout: float) -> JobRecord:
    delivery = asyncio.ensure_future(hand_off(record.job_id))
    try:
        await asyncio.wait_for(asyncio.shield(delivery), timeout)
    except TimeoutError:
        log.warning("runner slow to acknowledge job %s; it stays queued", record.job_id)
        delivery.add_done_callback(_log_late_failure)
    except Exception as exc:
        log.warning("could not hand job %s to the runner: %s", record.job_id, type(exc).__name__)
        await store.finish(record, JobStatus.failed, detail="The compute cluster could not accept the job.")
        raise ClusterUnavailable() from None
    return record


def _log_late_failure(delivery: asyncio.Future) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.warning("a late hand-off failed (%s); the runner's sweep starts the job",
                    type(delivery.exception()).__name__)
