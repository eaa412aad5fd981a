"""Accepting a job: limits, idempotency, the Redis record, and the hand-off to the runner."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Optional

import orjson
from fastapi import HTTPException

from compute.kinds import kind_names
from compute.records import JobStatus
from compute.runner import new_record
from serve_app.context import AppContext
from serve_app.errors import FieldProblem
from serve_app.schemas import JobAccepted, JobCreate

log = logging.getLogger(__name__)
SUBMIT_TIMEOUT_SECONDS = 10
REPLAY_WAIT_SECONDS = 2.0
REPLAY_WAIT_STEPS = 40


@dataclass(frozen=True)
class JobLimits:
    max_n: int
    max_chunks: int

    def hints(self) -> dict[str, str]:
        return {"n": f"allowed: 1 to {self.max_n:,}", "chunks": f"allowed: 1 to {self.max_chunks:,}"}


@dataclass(frozen=True)
class Submission:
    accepted: JobAccepted
    replayed: bool


def _check(body: JobCreate, limits: JobLimits) -> None:
    if not 1 <= body.n <= limits.max_n:
        raise FieldProblem("n", f"must be between 1 and {limits.max_n:,} (got {body.n:,})", "out_of_range")
    if not 1 <= body.chunks <= limits.max_chunks:
        raise FieldProblem("chunks", f"must be between 1 and {limits.max_chunks:,} (got {body.chunks:,})",
                           "out_of_range")
    if body.kind not in kind_names():
        raise FieldProblem("kind", f"unknown kind {body.kind!r}; choose one of: {', '.join(kind_names())}",
                           "unknown_kind")


def _fingerprint(body: JobCreate) -> str:
    return hashlib.sha256(orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)).hexdigest()


async def submit_job(
    ctx: AppContext,
    body: JobCreate,
    *,
    owner: str,
    limits: JobLimits,
    idempotency_scope: str,
    idempotency_key: Optional[str],
    index_owner: bool,
    max_active: int = 0,
) -> Submission:
    _check(body, limits)
    record = new_record(str(uuid.uuid4()), owner, body.kind, body.n, body.chunks)
    accepted = JobAccepted(job_id=record.job_id, status=record.status)
    if idempotency_key is not None:
        replay = await _claim(ctx, idempotency_scope, idempotency_key, body, accepted)
        if replay is not None:
            return Submission(replay, replayed=True)
    try:
        created = await ctx.store.create_job(record, index_owner=index_owner, max_active=max_active)
    except BaseException:
        await _release(ctx, idempotency_scope, idempotency_key)
        raise
    if not created:
        await _release(ctx, idempotency_scope, idempotency_key)
        raise HTTPException(429, f"You already have {max_active} active jobs (the limit); wait for one to "
                                 "finish or cancel one.", headers={"Retry-After": "5"})
    try:
        runner = await ctx.runner()
        await asyncio.wait_for(runner.submit.remote(record.job_id), SUBMIT_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        # A busy runner: the call stays queued and the job is durable in Redis (the runner's sweep
        # would start it anyway), so the job is accepted.
        log.warning("runner slow to acknowledge job %s; it stays queued", record.job_id)
    except Exception as exc:  # Ray unreachable: fail the job visibly instead of leaving it pending
        log.warning("could not hand job %s to the runner: %s", record.job_id, type(exc).__name__)
        await ctx.store.finish(record, JobStatus.failed, detail="The compute cluster could not accept the job.")
        await _release(ctx, idempotency_scope, idempotency_key)
        raise HTTPException(503, "The compute cluster (Ray) is unavailable; the job was not started.",
                            headers={"Retry-After": "5"}) from None
    return Submission(accepted, replayed=False)


async def _claim(ctx: AppContext, scope: str, key: str, body: JobCreate,
                 accepted: JobAccepted) -> Optional[JobAccepted]:
    """Claim the key for this request (None), or return the first request's response to replay.

    The claim comes before the job exists, so of two concurrent requests exactly one creates a job;
    the other waits briefly until that job's record is readable before answering with its id.
    """
    entry = {"fingerprint": _fingerprint(body), "response": accepted.model_dump(mode="json")}
    for _ in range(2):
        existing = await ctx.store.claim_idempotency_key(scope, key, entry)
        if existing is None:
            return None
        if existing["fingerprint"] != entry["fingerprint"]:
            raise HTTPException(409, "This Idempotency-Key was already used with a different request body.")
        original = JobAccepted.model_validate(existing["response"])
        for _ in range(REPLAY_WAIT_STEPS):
            if await ctx.store.get_job(original.job_id) is not None:
                return original
            await asyncio.sleep(REPLAY_WAIT_SECONDS / REPLAY_WAIT_STEPS)
        # the first request never created its job (it was refused); its claim is gone or stale
        await ctx.store.release_idempotency_key(scope, key)
    raise HTTPException(409, "This Idempotency-Key is in use by a request that did not complete; retry.")


async def _release(ctx: AppContext, scope: str, key: Optional[str]) -> None:
    if key is not None:
        await ctx.store.release_idempotency_key(scope, key)
