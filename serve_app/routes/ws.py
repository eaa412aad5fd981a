"""Live progress of one job over a WebSocket: ``WS /ws/{job_id}`` (yours), ``WS /ws/demo/{job_id}``.

The template's clients open ``/v1/ws/{job_id}?token=...``; here the socket carries the job, fed like
the SSE stream (``job_streams.watch_job``: events of the replica's hub wake it, it sends a fresh read),
so it holds no Redis pub/sub connection of its own. JSON text frames, in order:

- ``{"type": "connected", "job_id"}`` once the caller and the job are known;
- ``{"type": "progress", "job": JobOut}`` per change of status or completed_chunks;
- ``{"type": "done", "job": JobOut}`` with the final record, then the server closes with 1000;
- ``{"type": "heartbeat", "timestamp"}`` after WS_HEARTBEAT_SECONDS without an event;
- ``{"type": "error", "detail"}`` if the record disappears, then close 1011.

A text ``ping`` from the client is answered with the text ``pong``; anything else it sends is ignored.
Refusals accept the handshake and close at once with 1008 and a reason (a refused handshake would only
show the client an HTTP 403): ``Not authenticated.`` or ``Job not found.`` (also for another user's
job). Redis unreachable: close 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing, suppress
from typing import AsyncIterator, Awaitable, Callable, Optional

import orjson
from fastapi import APIRouter, WebSocket
from redis.exceptions import RedisError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from serve_app.auth import authenticate_socket
from serve_app.context import AppContext
from serve_app.deps import JOB_ID_PATTERN
from serve_app.job_streams import Look, watch_job
from serve_app.job_views import NOT_FOUND
from serve_app.routes.demo import DEMO_OWNER
from serve_app.schemas import JobOut

router = APIRouter(tags=["websocket"])
log = logging.getLogger(__name__)

NORMAL, POLICY_VIOLATION, INTERNAL_ERROR, TRY_AGAIN_LATER = 1000, 1008, 1011, 1013
NOT_AUTHENTICATED = "Not authenticated."
UNAVAILABLE = "Storage (Redis) is unavailable; try again shortly."
Send = Callable[[str], Awaitable[None]]


# Declared before /ws/{job_id}: the specific path first, as with /jobs/events before /jobs/{job_id}.
@router.websocket("/ws/demo/{job_id}")
async def demo_job_socket(websocket: WebSocket, job_id: str) -> None:
    """A demo job's progress; no credentials."""
    await websocket.accept()
    await _follow(websocket, websocket.app.state.ctx, job_id, DEMO_OWNER)


@router.websocket("/ws/{job_id}")
async def job_socket(websocket: WebSocket, job_id: str) -> None:
    """One of your jobs' progress: ``?token=`` (a JWT or an ``rjt_`` API token), an ``Authorization:
    Bearer`` header, or the UI's session cookie from an allowed origin."""
    await websocket.accept()
    ctx: AppContext = websocket.app.state.ctx
    try:
        user = await authenticate_socket(websocket, ctx, websocket.query_params.get("token"))
    except RedisError:
        return await websocket.close(TRY_AGAIN_LATER, UNAVAILABLE)
    if user is None:
        return await websocket.close(POLICY_VIOLATION, NOT_AUTHENTICATED)
    await _follow(websocket, ctx, job_id, user.user_id)


async def _follow(websocket: WebSocket, ctx: AppContext, job_id: str, owner: str) -> None:
    """Send the job's updates until it ends (then close) or the client goes away."""
    if not JOB_ID_PATTERN.match(job_id):
        return await websocket.close(POLICY_VIOLATION, NOT_FOUND)
    try:
        async with aclosing(watch_job(ctx, job_id, owner, ctx.settings.ws_heartbeat_seconds)) as looks:
            first = await anext(looks)
            if first.record is None:
                return await websocket.close(POLICY_VIOLATION, NOT_FOUND)
            await websocket.send_text(orjson.dumps({"type": "connected", "job_id": job_id}).decode())
            closing = await _converse(websocket, looks, first)
    except WebSocketDisconnect:
        return
    except RedisError:
        log.warning("redis unavailable during a job's WebSocket")
        closing = TRY_AGAIN_LATER, UNAVAILABLE
    except Exception:
        log.exception("unexpected error on a job's WebSocket")
        closing = INTERNAL_ERROR, "Internal error."
    if closing is not None and websocket.application_state is WebSocketState.CONNECTED:
        with suppress(WebSocketDisconnect, RuntimeError):  # the client went away meanwhile
            await websocket.close(*closing)


async def _converse(websocket: WebSocket, looks: AsyncIterator[Look], first: Look) -> Optional[tuple[int, str]]:
    """Updates out, pings answered, until the job ends (the close code and reason to send) or the
    client leaves (None). Either side's end cancels the other, releasing the job's subscription."""
    lock = asyncio.Lock()  # one frame at a time from the two tasks

    async def send(text: str) -> None:
        async with lock:
            await websocket.send_text(text)

    updates = asyncio.create_task(_send_updates(send, looks, first))
    pings = asyncio.create_task(_answer_pings(websocket, send))
    try:
        done, _ = await asyncio.wait({updates, pings}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (updates, pings):
            task.cancel()
        await asyncio.gather(updates, pings, return_exceptions=True)
    if updates in done:
        try:
            return updates.result()
        except WebSocketDisconnect:
            return None
    return None  # the client left (or could not be sent a pong: it is leaving)


async def _send_updates(send: Send, looks: AsyncIterator[Look], look: Look) -> tuple[int, str]:
    while True:
        if look.record is None:
            await send(orjson.dumps({"type": "error", "detail": NOT_FOUND}).decode())
            return INTERNAL_ERROR, NOT_FOUND
        if look.changed:
            kind = "done" if look.record.status.terminal else "progress"
            # JobOut's own JSON: ``result`` may exceed 64 bits, which orjson refuses
            job = JobOut.from_record(look.record).model_dump_json()
            await send(f'{{"type":"{kind}","job":{job}}}')
            if kind == "done":
                return NORMAL, "Job finished."
        elif not look.batch:
            await send(orjson.dumps({"type": "heartbeat", "timestamp": time.time()}).decode())
        look = await anext(looks)


async def _answer_pings(websocket: WebSocket, send: Send) -> None:
    """Until the client disconnects: ``ping`` → ``pong``; other messages are ignored."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "ping":
            await send("pong")
