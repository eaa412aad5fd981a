"""Accepting a job, for every way in (the HTTP routes and ``cluster.batch``): the input checks, the
atomic active-job limit, the pending record, and the hand-off to the runner.

The HTTP edge adds what only it has (idempotency keys, rate limits, status codes) around ``accept``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Awaitable, Callable

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


async def accept(store: JobStore, hand_off: HandOff, record: JobRecord, *, index_owner: bool,
                 max_active: int = 0, timeout: float = SUBMIT_TIMEOUT_SECONDS) -> None:
    """Store the pending job (unless its owner is at ``max_active``) and ``hand_off(job_id)`` to the
    runner (``AppContext.hand_off`` over HTTP, the runner actor's ``submit`` in ``cluster.batch``).

    A runner slow to acknowledge does not refuse the job: it is durable in Redis, the hand-off goes on
    in the background, and the runner's sweep starts it anyway. A cluster that cannot be reached
    fails the job visibly instead.
    """
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


def _log_late_failure(delivery: asyncio.Future) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.warning("a late hand-off failed (%s); the runner's sweep starts the job",
                    type(delivery.exception()).__name__)
