"""Public demo jobs: no account needed, small limits, strict per-IP rate limit."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from serve_app.context import AppContext
from serve_app.deps import ClientIP, Ctx, DemoJobLimits, IdempotencyKey, JobId
from serve_app.job_streams import job_stream
from serve_app.job_views import chunks_of, job_response, load_owned
from serve_app.responses import ERRORS, SSE, ValidationErrors
from serve_app.schemas import DemoJobBody, JobAccepted, JobChunksOut, JobOut
from serve_app.status_reads import status_read
from serve_app.submission import RateLimit, accepted_response, submit_job

DEMO_OWNER = "demo"
router = APIRouter(prefix="/jobs/demo", tags=["demo"])


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    summary="Start a demo job (no auth)",
    description="The body is as for `POST /jobs` (any kind that reads no upload). Limits: 1 ≤ n ≤ DEMO_MAX_N, "
    "1 ≤ chunks ≤ DEMO_MAX_CHUNKS (the schema shows the configured maxima; `GET /kinds` lists them); the range "
    "kinds clamp chunks above n to n. Rate limit RATE_LIMIT_DEMO per client IP. An `Idempotency-Key` header "
    "returns the first response for the same key and body from the same IP for 24 h.",
    responses=ERRORS(409, 413, 422, 429, 503) | ValidationErrors,
)
async def create_demo_job(body: DemoJobBody, limits: DemoJobLimits, response: Response,
                          ctx: Ctx, ip: ClientIP, key: IdempotencyKey = None) -> JobAccepted:
    submission = await submit_job(
        ctx, body, owner=DEMO_OWNER, limits=limits, rate=RateLimit("demo", ctx.settings.rate_limit_demo, ip),
        idempotency_scope=f"demo:{ip}", idempotency_key=key, index_owner=False,
    )
    return accepted_response(submission, response)


async def demo_owner(request: Request, ctx: AppContext) -> str:
    return DEMO_OWNER


@router.get("/{job_id}", response_model=JobOut, summary="Status of a demo job", responses=ERRORS(404, 503))
@status_read(owner=demo_owner)
async def get_demo_job(job_id: JobId, ctx: Ctx) -> Response:
    return await job_response(ctx, job_id, DEMO_OWNER)


@router.get("/{job_id}/chunks", response_model=JobChunksOut, summary="Chunks of a demo job",
            responses=ERRORS(404, 503))
async def get_demo_job_chunks(job_id: JobId, ctx: Ctx) -> JobChunksOut:
    return await chunks_of(ctx, await load_owned(ctx, job_id, DEMO_OWNER))


@router.get("/{job_id}/events", summary="Live progress of a demo job (Server-Sent Events)",
            description="As `GET /jobs/{job_id}/events`: `progress` events, then `done`; with "
            "`chunks=true` also `chunks` (only newly finished chunks) and `resync`.",
            responses=ERRORS(404, 503) | SSE | ValidationErrors)
async def demo_job_events(job_id: JobId, ctx: Ctx, with_chunks: Annotated[bool, Query(
        alias="chunks", description="Also send `chunks` events with newly finished chunks' facts.")] = False):
    return job_stream(ctx, await load_owned(ctx, job_id, DEMO_OWNER), with_chunks=with_chunks)
