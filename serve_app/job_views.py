"""Reading jobs for their owner: the record and its chunks (live streams: ``job_streams.py``)."""

from __future__ import annotations

from fastapi import HTTPException, Response

from compute.kinds import ChunkSpec, UnknownKind, get_kind
from compute.records import ChunkFact, JobRecord, JobStatus
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


async def _chunk_inputs(ctx: AppContext, record: JobRecord) -> list:
    """The job's chunk inputs: stored with it, or (a record from before they were) split again."""
    inputs = await ctx.store.get_chunk_inputs(record.job_id)
    if inputs is not None:
        return inputs
    try:
        kind = get_kind(record.kind)
        if kind.upload_fields:
            return []
        return kind.split(kind.Params.model_validate(record.params), record.chunks, None)
    except (UnknownKind, ValueError):
        return []


async def chunks_of(ctx: AppContext, record: JobRecord) -> JobChunksOut:
    """Every chunk: the facts of those that finished, the others from their inputs (with the
    progress a running chunk reported)."""
    facts = await ctx.store.get_chunk_facts(record.job_id)
    specs = [ChunkSpec(i, chunk_input) for i, chunk_input in enumerate(await _chunk_inputs(ctx, record))]
    running = record.status is JobStatus.running
    progress = await ctx.store.get_chunk_progress(record.job_id) if running and len(facts) < len(specs) else {}
    pending_status = ("cancelled" if record.status.value in ("cancelled", "failed")
                      else "cached" if record.cached else "pending")
    chunks = []
    for spec in specs:
        fact = facts.get(spec.index)
        if fact is not None:
            chunks.append(ChunkOut.from_fact(fact))
        else:
            status = "running" if spec.index in progress else pending_status
            chunks.append(ChunkOut.from_fact(ChunkFact(index=spec.index, start=spec.start, end=spec.end, status=status),
                                             progress=progress.get(spec.index)))
    return JobChunksOut(job_id=record.job_id, status=record.status, total_chunks=record.total_chunks, chunks=chunks)
