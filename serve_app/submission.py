"""Accepting a job over HTTP: idempotency, the rate limit, and ``compute.submission`` (the checks,
the active-job limit, the record and the hand-off, shared with ``cluster.batch``).

A replay of a known Idempotency-Key is answered before the rate limit is counted: a client that
retries after a timeout gets its original response, not a 429.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Optional

from fastapi import HTTPException, Response
from pydantic import BaseModel

from compute import submission
from compute.config import JobLimits
from serve_app.context import AppContext
from serve_app.errors import FieldProblem
from compute.kinds import get_kind
from serve_app.schemas import JobAccepted

__all__ = ["RateLimit", "Submission", "accepted_response", "submit_job"]
REPLAY_WAIT_SECONDS = 2.0
REPLAY_WAIT_STEPS = 40


@dataclass(frozen=True)
class RateLimit:
    """The limit a new job counts against: ``name`` and ``limit`` (e.g. ``5/minute``) per ``key``."""
    name: str
    limit: str
    key: str


@dataclass(frozen=True)
class Submission:
    accepted: JobAccepted
    replayed: bool
    headers: dict = field(default_factory=dict)  # the rate limit's X-RateLimit-* headers


def accepted_response(submission: Submission, response: Response) -> JobAccepted:
    """The route's answer: the accepted job, with the rate-limit and replay headers."""
    response.headers.update(submission.headers)
    if submission.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return submission.accepted


def _fingerprint(body: BaseModel) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


async def _prepare(ctx: AppContext, owner: str, request: submission.JobRequest, limits: JobLimits):
    """``compute.submission.prepare``; in a thread for kinds that read an upload (file I/O)."""
    try:
        reads_upload = bool(get_kind(request.kind).upload_fields)
    except KeyError:
        reads_upload = False
    if reads_upload:
        return await asyncio.to_thread(submission.prepare, owner, request, limits, ctx.artifacts)
    return submission.prepare(owner, request, limits, ctx.artifacts)


async def submit_job(
    ctx: AppContext,
    body: BaseModel,
    *,
    owner: str,
    limits: JobLimits,
    rate: RateLimit,
    idempotency_scope: str,
    idempotency_key: Optional[str],
    index_owner: bool,
) -> Submission:
    """Accept ``body`` (the legacy ``JobCreate`` or a kind's job model) for ``owner``."""
    try:
        job = await _prepare(ctx, owner, body.to_request(), limits)
    except submission.InvalidInput as exc:
        raise FieldProblem(exc.field, exc.message, exc.code) from None
    except submission.UploadNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    accepted = JobAccepted(job_id=job.record.job_id, status=job.record.status)
    if idempotency_key is not None:
        replay = await _claim(ctx, idempotency_scope, idempotency_key, body, accepted)
        if replay is not None:
            ctx.metrics.count("idempotent_replays")
            return Submission(replay, replayed=True)
    try:
        headers = await ctx.limiter.hit(rate.name, rate.limit, rate.key)
        stored = await submission.accept(ctx.store, ctx.hand_off, job, index_owner=index_owner,
                                         max_active=limits.max_active,
                                         cache=body.use_cache and ctx.settings.result_cache_seconds > 0)
    except BaseException as exc:
        await _release(ctx, idempotency_scope, idempotency_key)
        if isinstance(exc, submission.TooManyActiveJobs):
            raise HTTPException(429, str(exc), headers={"Retry-After": "5"}) from None
        if isinstance(exc, submission.ClusterUnavailable):
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
        raise
    if stored.cached:
        accepted = JobAccepted(job_id=stored.job_id, status=stored.status, cached=True, result=stored.result)
    return Submission(accepted, replayed=False, headers=headers)


async def _claim(ctx: AppContext, scope: str, key: str, body: BaseModel,
                 accepted: JobAccepted) -> Optional[JobAccepted]:
    """Claim the key for this request (None), or return the first request's response to replay.

    The claim comes before the job exists, so of two concurrent requests exactly one creates a job;
    the other waits briefly until that job's record is readable before answering with its id.
    """
    entry = {"fingerprint": _fingerprint(body), "response": accepted.model_dump(mode="json")}
    for _ in range(2):
        existing = await ctx.idempotency.claim(scope, key, entry)
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
        await ctx.idempotency.release(scope, key)
    raise HTTPException(409, "This Idempotency-Key is in use by a request that did not complete; retry.")


async def _release(ctx: AppContext, scope: str, key: Optional[str]) -> None:
    if key is not None:
        await ctx.idempotency.release(scope, key)
