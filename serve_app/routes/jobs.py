"""Jobs of signed-in users: submit, list, read, follow live, cancel."""

from typing import Annotated, Optional

from fastapi import APIRouter, HTTPException, Query, Response

from compute import submission
from compute.records import JobRecord, JobStatus
from serve_app.deps import (
    ClientIP,
    Ctx,
    CurrentUser,
    IdempotencyKey,
    JobId,
    UserJobLimits,
    signed_in_owner,
)
from serve_app.job_streams import job_stream, owner_stream
from serve_app.job_views import NOT_FOUND, chunks_of, job_response, load_owned
from serve_app.responses import ERRORS, SSE, ValidationErrors
from serve_app.schemas import JobAccepted, JobBody, JobChunksOut, JobOut, JobPage
from serve_app.status_reads import status_read
from serve_app.submission import RateLimit, accepted_response, submit_job

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    summary="Start a job",
    description="A body is `{\"kind\", \"params\", \"chunks\"}` (one shape per kind below, each with its own "
    "params and limits; `GET /kinds` lists them) or the original `{\"n\", \"chunks\", \"kind\"}` of the range "
    "kinds. Limits: 1 ≤ n ≤ MAX_N, 1 ≤ chunks ≤ MAX_CHUNKS; the range kinds clamp chunks above n to n. "
    "An upload named in params must be yours (404 otherwise). At most MAX_ACTIVE_JOBS_PER_USER "
    "pending/running jobs per user. Rate limit RATE_LIMIT_JOBS per client IP. An "
    "`Idempotency-Key` header returns the first response for the same key and body from the same user "
    "for 24 h.",
    responses=ERRORS(401, 404, 409, 413, 422, 429, 503) | ValidationErrors,
)
async def create_job(body: JobBody, limits: UserJobLimits, user: CurrentUser, response: Response, ctx: Ctx,
                     ip: ClientIP, key: IdempotencyKey = None) -> JobAccepted:
    submission = await submit_job(
        ctx, body, owner=user.user_id, limits=limits, rate=RateLimit("jobs", ctx.settings.rate_limit_jobs, ip),
        idempotency_scope=f"user:{user.user_id}", idempotency_key=key, index_owner=True,
    )
    return accepted_response(submission, response)


@router.get("", response_model=JobPage, summary="Your jobs, newest first", responses=ERRORS(401, 503))
async def list_jobs(
    user: CurrentUser,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    status: Optional[JobStatus] = None,
) -> JobPage:
    if status is None:
        total, ids = await ctx.store.owner_job_ids(user.user_id, offset, limit)
        records = await ctx.store.get_jobs(ids)
    else:  # the status's own index: a page costs O(page)
        total, ids = await ctx.store.owner_job_ids_by_status(user.user_id, status, offset, limit)
        found = await ctx.store.get_jobs(ids)
        missing = set(ids) - {r.job_id for r in found}
        if missing:  # records that expired before the index did
            await ctx.store.forget_from_status_index(user.user_id, status, missing)
        records = [r for r in found if r.status is status]  # not one that moved on since the page was read
    return JobPage(items=[JobOut.from_record(r) for r in records], total=total, limit=limit, offset=offset)


WithChunks = Annotated[bool, Query(alias="chunks", description="Also send `chunks` events with newly finished chunks' facts.")]


@router.get(
    "/events",  # before /{job_id}, which would take "events" for an id (and 404)
    summary="Live updates of all your jobs (Server-Sent Events)",
    description="One stream for every job you own, so a page follows any number of jobs over one "
    "connection. Events: `ready` once subscribed (re-read what you show, then apply updates); "
    "`progress` with a job's record (JobOut) when its status or completed_chunks changes; `done` with "
    "the final record when a job finishes; `removed` `{job_id, detail}` when a record is gone; "
    "`resync` when updates may have been missed (re-read what you show). A `retry:` line and "
    "keep-alive comments every 5 s. The stream stays open.",
    responses=ERRORS(401, 503) | SSE,
)
async def all_job_events(user: CurrentUser, ctx: Ctx):
    return owner_stream(ctx, user.user_id)


@router.get("/{job_id}", response_model=JobOut, summary="Status of one of your jobs", responses=ERRORS(401, 404, 503))
@status_read(owner=signed_in_owner)
async def get_job(job_id: JobId, user: CurrentUser, ctx: Ctx) -> Response:
    return await job_response(ctx, job_id, user.user_id)


@router.get("/{job_id}/chunks", response_model=JobChunksOut, summary="Per-chunk facts of one of your jobs",
            responses=ERRORS(401, 404, 503))
async def get_job_chunks(job_id: JobId, user: CurrentUser, ctx: Ctx) -> JobChunksOut:
    return await chunks_of(ctx, await load_owned(ctx, job_id, user.user_id))


@router.get("/{job_id}/events", summary="Live progress of one of your jobs (Server-Sent Events)",
            description="Events: `progress` with the job (JobOut) per change of status or completed_chunks, "
            "then `done` with the final record, and the stream ends; `error` if the record is gone. With "
            "`chunks=true`, also `chunks` `{job_id, chunks: [ChunkOut]}` with only the chunks finished "
            "since the last such event, and `resync` when some may have been missed (re-read `/chunks`).",
            responses=ERRORS(401, 404, 503) | SSE | ValidationErrors)
async def job_events(job_id: JobId, user: CurrentUser, ctx: Ctx, with_chunks: WithChunks = False):
    return job_stream(ctx, await load_owned(ctx, job_id, user.user_id), with_chunks=with_chunks)


@router.post("/{job_id}/retry", status_code=202, response_model=JobAccepted, summary="Retry a failed or cancelled job",
             description="Runs the job again as a new job (its `retry_of` names this one) that reuses the chunks "
             "that had completed, with their facts and artifacts: only the missing chunks run. Counts against "
             "MAX_ACTIVE_JOBS_PER_USER and RATE_LIMIT_JOBS.",
             responses=ERRORS(401, 404, 409, 429, 503))
async def retry_job(job_id: JobId, user: CurrentUser, ctx: Ctx, ip: ClientIP) -> JobAccepted:
    original = await load_owned(ctx, job_id, user.user_id)
    await ctx.limiter.hit("jobs", ctx.settings.rate_limit_jobs, ip)
    try:
        record = await submission.retry(ctx.store, ctx.hand_off, original, index_owner=True, artifacts=ctx.artifacts,
                                        max_active=ctx.settings.max_active_jobs_per_user)
    except submission.NotRetryable as exc:
        raise HTTPException(409, str(exc)) from None
    except submission.TooManyActiveJobs as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": "5"}) from None
    except submission.ClusterUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    return JobAccepted(job_id=record.job_id, status=record.status)


@router.delete("/{job_id}", response_model=JobOut, summary="Cancel a pending or running job",
               responses=ERRORS(401, 404, 409, 503))
async def cancel_job(job_id: JobId, user: CurrentUser, ctx: Ctx) -> JobOut:
    record = await load_owned(ctx, job_id, user.user_id)
    if not record.status.terminal:
        runner = await ctx.runner(job_id)
        final = await runner.cancel.remote(job_id, "Cancelled by the user.")
        if final is None:
            raise HTTPException(404, NOT_FOUND)
        record = JobRecord.model_validate(final)
        if record.status is JobStatus.cancelled:
            return JobOut.from_record(record)
    # it had finished before, or finished while being cancelled
    raise HTTPException(409, f"Job already {record.status.value}; only pending or running jobs can be cancelled.")
