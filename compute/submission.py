"""Accepting a job, for every way in (the HTTP routes and ``cluster.batch``): the input checks, the
atomic active-job limit, the pending record, and the hand-off to the runner.

The HTTP edge adds what only it has (idempotency keys, rate limits, status codes) around ``accept``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable

from compute.kinds import kind_names
from compute.records import JobRecord, JobStatus
from compute.runner import new_record
from compute.storage.jobs import JobStore

log = logging.getLogger(__name__)
SUBMIT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class JobLimits:
    max_n: int
    max_chunks: int

    def hints(self) -> dict[str, str]:
        return {"n": f"allowed: 1 to {self.max_n:,}", "chunks": f"allowed: 1 to {self.max_chunks:,}"}


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


def check(kind: str, n: int, chunks: int, limits: JobLimits) -> None:
    """Raise InvalidInput naming the first field outside what is allowed."""
    if not 1 <= n <= limits.max_n:
        raise InvalidInput("n", f"must be between 1 and {limits.max_n:,} (got {n:,})", "out_of_range")
    if not 1 <= chunks <= limits.max_chunks:
        raise InvalidInput("chunks", f"must be between 1 and {limits.max_chunks:,} (got {chunks:,})",
                           "out_of_range")
    if kind not in kind_names():
        raise InvalidInput("kind", f"unknown kind {kind!r}; choose one of: {', '.join(kind_names())}",
                           "unknown_kind")


def prepare(owner: str, kind: str, n: int, chunks: int, limits: JobLimits) -> JobRecord:
    """The checked, not yet stored, pending record of a new job."""
    check(kind, n, chunks, limits)
    return new_record(str(uuid.uuid4()), owner, kind, n, chunks)


async def accept(store: JobStore, runner: Callable[[], Awaitable], record: JobRecord, *,
                 index_owner: bool, max_active: int = 0) -> None:
    """Store the pending job (unless its owner is at ``max_active``) and hand it to the runner.

    A runner slow to acknowledge does not refuse the job: it is durable in Redis and the runner's
    sweep starts it anyway. A cluster that cannot be reached fails the job visibly instead.
    """
    if not await store.create_job(record, index_owner=index_owner, max_active=max_active):
        raise TooManyActiveJobs(max_active)
    try:
        handle = await runner()
        await asyncio.wait_for(handle.submit.remote(record.job_id), SUBMIT_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        log.warning("runner slow to acknowledge job %s; it stays queued", record.job_id)
    except Exception as exc:
        log.warning("could not hand job %s to the runner: %s", record.job_id, type(exc).__name__)
        await store.finish(record, JobStatus.failed, detail="The compute cluster could not accept the job.")
        raise ClusterUnavailable() from None
