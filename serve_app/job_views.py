"""Reading jobs for their owner: the record and its chunks (live streams: ``job_streams.py``)."""

from __future__ import annotations

from fastapi import HTTPException, Response

from compute.kinds import UnknownKind, get_kind
from compute.records import ChunkFact, JobRecord
from serve_app.context import AppContext
from serve_app.schemas import ChunkOut, JobChunksOut, JobOut

NOT_FOUND = "Job not found."


async def load_owned(ctx: AppContext, job_id: str, owner: str) -> JobRecord:
    """The job if it exists and belongs to ``owner``; otherwise 404 (never 403: ids stay private)."""
    record = await ctx.store.get_job(job_id)
    if record is None or record.owner != owner:
        raise HTTPException(404, NOT_FOUND)
    return record


async def job_body(ctx: AppContext, job_id: str, owner: str) -> bytes | None:
    """The job as JSON if it exists and belongs to ``owner``, else None; from the replica's status
    cache when it holds the job (``status_cache.py``)."""
    cached = ctx.statuses.get(job_id)
    if cached is not None:
        return cached.body if cached.owner == owner else None
    mark = ctx.statuses.mark()
    record = await ctx.store.get_job(job_id)
    if record is None or record.owner != owner:
        return None
    body = JobOut.from_record(record).model_dump_json().encode()
    ctx.statuses.remember(record, body, mark)
    return body


async def job_response(ctx: AppContext, job_id: str, owner: str) -> Response:
    """The job for its owner (404 otherwise). Returning a Response skips FastAPI's second validation
    and encoding of the ``response_model`` (which still documents the shape)."""
    body = await job_body(ctx, job_id, owner)
    if body is None:
        raise HTTPException(404, NOT_FOUND)
    return Response(body, media_type="application/json")


async def chunks_of(ctx: AppContext, record: JobRecord) -> JobChunksOut:
    facts = await ctx.store.get_chunk_facts(record.job_id)
    try:
        specs = get_kind(record.kind).split(record.n, record.chunks)
    except UnknownKind:
        specs = []
    pending_status = ("cancelled" if record.status.value in ("cancelled", "failed")
                      else "cached" if record.cached else "pending")
    chunks = [
        ChunkOut.from_fact(facts.get(s.index) or ChunkFact(index=s.index, start=s.start, end=s.end,
                                                           status=pending_status))
        for s in specs
    ]
    return JobChunksOut(job_id=record.job_id, status=record.status, total_chunks=record.total_chunks, chunks=chunks)
