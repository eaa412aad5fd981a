"""Live job updates as Server-Sent Events, fed by the replica's event hub (``live_events.py``).

Two streams, neither holding a Redis pub/sub connection of its own:

- one job (``GET /jobs/{id}/events``, ``/jobs/demo/{id}/events``): ``progress`` per change of status
  or completed_chunks, then ``done`` with the final record, and the stream ends; ``error`` if the
  record is gone. With ``chunks=true`` also ``chunks`` events carrying only the chunk facts not sent
  before on this stream, and ``resync`` when some may have been missed (re-read ``/chunks``).
- all of a user's jobs (``GET /jobs/events``): ``ready`` once subscribed, then ``progress``/``done``
  with the changed job's record, ``removed`` when a job's record is gone, ``resync`` when events may
  have been missed (re-read the list). It stays open.

Events only wake a stream; what it sends is a fresh read of Redis (a burst of events costs one
read), so a lost event costs at most one heartbeat of delay, never a wrong state. That loop for one
job is ``watch_job``, shared with the WebSocket route (``routes/ws.py``).
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from typing import AsyncIterator, Iterable, Optional

import orjson
from cachetools import LRUCache
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from compute.records import JobRecord
from serve_app.context import AppContext
from serve_app.job_views import NOT_FOUND
from serve_app.live_events import RESYNC, Item
from serve_app.schemas import ChunkOut, JobOut

HEARTBEAT_SECONDS = 5.0
RETRY = b"retry: 2000\n\n"
KEEP_ALIVE = b": keep-alive\n\n"


class ChunkUpdate(BaseModel):
    """Data of a ``chunks`` event: chunks that finished since the stream last sent any."""

    job_id: str
    chunks: list[ChunkOut]


# SSE framing by hand (two lines) rather than sse-starlette: the stream already wakes every heartbeat
# to re-read the job, and sse-starlette would add its own ping and disconnect-watching tasks per stream.
def sse(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def _job(record: JobRecord) -> bytes:
    return JobOut.from_record(record).model_dump_json().encode()


def _state(record: JobRecord) -> tuple:
    """What a client is told again when it changes (a queued job's place and detail too)."""
    return record.status, record.completed_chunks, record.queue_position, record.detail


class EventStream(StreamingResponse):
    """A Server-Sent Events response (also the routes' ``response_class``, for the OpenAPI schema)."""

    media_type = "text/event-stream"


def streaming(events: AsyncIterator[bytes]) -> EventStream:
    return EventStream(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# -- one job ------------------------------------------------------------------------------------

def _new_indices(batch: Iterable[Item], sent: set[int]) -> list[int]:
    named = dict.fromkeys(i for item in batch if item is not RESYNC for i in item.chunks)
    return [i for i in named if i not in sent]


@dataclass(frozen=True)
class Look:
    """One fresh read of a watched job."""

    record: Optional[JobRecord]  # None: the record is gone (or is not the owner's)
    changed: bool  # its status or completed_chunks differ from the previous look's (always, the first time)
    batch: Optional[list[Item]]  # the events that woke this look: None the first time, [] after silence


async def watch_job(ctx: AppContext, job_id: str, owner: str, heartbeat: float) -> AsyncIterator[Look]:
    """Read the job now and again on each event about it, or after ``heartbeat`` s of silence, until it
    is finished (the last look is the terminal record) or gone (a look without a record). Holds a
    subscription of the replica's event hub until it ends or is closed (``contextlib.aclosing``)."""
    with ctx.events.follow_job(job_id) as events:  # before the first read: no change slips between
        last, batch = None, None
        while True:
            record = await ctx.store.get_job(job_id)
            if record is None or record.owner != owner:
                yield Look(None, True, batch)
                return
            state = _state(record)
            changed, last = state != last, state
            yield Look(record, changed, batch)
            if record.status.terminal:
                return
            batch = await events.next_batch(heartbeat)


def _chunks_event(job_id: str, facts: dict, sent: set[int]) -> bytes:
    sent.update(facts)
    update = ChunkUpdate(job_id=job_id, chunks=[ChunkOut.from_fact(facts[i]) for i in sorted(facts)])
    return sse("chunks", update.model_dump_json().encode())


async def _one_job(ctx: AppContext, job_id: str, owner: str, with_chunks: bool) -> AsyncIterator[bytes]:
    yield RETRY
    sent: set[int] = set()  # chunk indices already sent on this stream
    async with aclosing(watch_job(ctx, job_id, owner, HEARTBEAT_SECONDS)) as looks:
        async for look in looks:
            if with_chunks and look.batch:
                if RESYNC in look.batch:
                    yield sse("resync", orjson.dumps({"job_id": job_id}))
                new = _new_indices(look.batch, sent)
                facts = await ctx.store.get_chunk_facts_for(job_id, new) if new else {}
                if facts:
                    yield _chunks_event(job_id, facts, sent)
            if look.record is None:
                yield sse("error", orjson.dumps({"detail": NOT_FOUND}))
            elif look.changed:
                if with_chunks and look.batch == []:  # a change no event told of
                    yield sse("resync", orjson.dumps({"job_id": job_id}))
                if look.record.status.terminal and with_chunks:
                    # the record can be ahead of the events read so far: send the rest first
                    rest = {i: f for i, f in (await ctx.store.get_chunk_facts(job_id)).items() if i not in sent}
                    if rest:
                        yield _chunks_event(job_id, rest, sent)
                yield sse("done" if look.record.status.terminal else "progress", _job(look.record))
            elif not look.batch:
                yield KEEP_ALIVE


def job_stream(ctx: AppContext, record: JobRecord, *, with_chunks: bool = False) -> EventStream:
    """The live stream of one job (already checked to belong to ``record.owner``)."""
    return streaming(_one_job(ctx, record.job_id, record.owner, with_chunks))


# -- all of an owner's jobs ---------------------------------------------------------------------

async def _owner_jobs(ctx: AppContext, owner: str) -> AsyncIterator[bytes]:
    yield RETRY
    watched: dict[str, tuple] = {}  # unfinished job -> the state last sent
    finished: LRUCache = LRUCache(maxsize=1024)  # finished jobs already sent as `done`
    with ctx.events.follow_owner(owner) as events:
        yield sse("ready", b"{}")
        while True:
            batch = await events.next_batch(HEARTBEAT_SECONDS)
            if RESYNC in batch:
                yield sse("resync", b"{}")
            if batch:
                ids = list(dict.fromkeys(item.job_id for item in batch if item is not RESYNC))
            else:  # silence: re-read what is followed, in case an event was lost
                ids = list(watched)
            sent = False
            records = {r.job_id: r for r in await ctx.store.get_jobs(ids)} if ids else {}
            for job_id in ids:
                record = records.get(job_id)
                if record is None:
                    # routed here by the event's owner, or followed here before: the job was this owner's
                    watched.pop(job_id, None)
                    if job_id not in finished:
                        finished[job_id] = True
                        yield sse("removed", orjson.dumps({"job_id": job_id, "detail": NOT_FOUND}))
                        sent = True
                    continue
                if record.owner != owner or job_id in finished:
                    continue
                state = _state(record)
                if watched.get(job_id) == state:
                    continue
                sent = True
                if record.status.terminal:
                    watched.pop(job_id, None)
                    finished[job_id] = True
                    yield sse("done", _job(record))
                else:
                    watched[job_id] = state
                    yield sse("progress", _job(record))
            if not batch and not sent:
                yield KEEP_ALIVE


def owner_stream(ctx: AppContext, owner: str) -> EventStream:
    """The live stream of every job of ``owner``."""
    return streaming(_owner_jobs(ctx, owner))
