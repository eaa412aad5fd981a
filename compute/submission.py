"""Accepting a job, for every way in (the HTTP routes and ``cluster.batch``): the input checks, the
atomic active-job limit, the pending record, and the hand-off to the runner.

The HTTP edge adds what only it has (idempotency keys, rate limits, status codes) around ``accept``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from typing import Awaitable, Callable, Optional

from compute.config import JobLimits
from compute.kinds import JobKind, UnknownKind, get_kind, kind_names
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


def check(kind: str, n: int, chunks: int, limits: JobLimits) -> JobKind:
    """The job's kind; raise InvalidInput naming the first field outside what is allowed."""
    if not 1 <= n <= limits.max_n:
        raise InvalidInput("n", f"must be between 1 and {limits.max_n:,} (got {n:,})", "out_of_range")
    if not 1 <= chunks <= limits.max_chunks:
        raise InvalidInput("chunks", f"must be between 1 and {limits.max_chunks:,} (got {chunks:,})",
                           "out_of_range")
    try:
        return get_kind(kind)
    except UnknownKind:
        raise InvalidInput("kind", f"unknown kind {kind!r}; choose one of: {', '.join(kind_names())}",
                           "unknown_kind") from None


def prepare(owner: str, kind: str, n: int, chunks: int, limits: JobLimits) -> JobRecord:
    """The checked, not yet stored, pending record of a new job."""
    job_kind = check(kind, n, chunks, limits)
    return JobRecord(job_id=str(uuid.uuid4()), owner=owner, kind=job_kind.name, n=n, chunks=chunks,
                     total_chunks=len(job_kind.split(n, chunks)), created_at=time.time())


HandOff = Callable[[str], Awaitable[None]]


def input_digest(record: JobRecord) -> str:
    """What makes two jobs of one owner the same computation (the result cache's key)."""
    return hashlib.sha256(f"{record.kind}\0{record.n}\0{record.chunks}".encode()).hexdigest()[:32]


async def remember_result(store: JobStore, record: JobRecord, seconds: int) -> None:
    """After a job completed: let it answer repeats of its inputs for ``seconds`` (deterministic kinds)."""
    if seconds > 0 and not record.cached and get_kind(record.kind).deterministic:
        await store.remember_result(record, input_digest(record), seconds)


async def _cached_copy(store: JobStore, record: JobRecord, *, index_owner: bool) -> Optional[JobRecord]:
    """Store and return a completed copy of the owner's cached result for these inputs, if there is one."""
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
    await store.create_job(copy, index_owner=index_owner)
    return copy


async def accept(store: JobStore, hand_off: HandOff, record: JobRecord, *, index_owner: bool,
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
        copy = await _cached_copy(store, record, index_owner=index_owner)
        if copy is not None:
            return copy
    if not await store.create_job(record, index_owner=index_owner, max_active=max_active):
        raise TooManyActiveJobs(max_active)
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
