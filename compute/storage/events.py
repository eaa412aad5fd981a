"""Reading job change events from Redis pub/sub (``JobStore``'s writes publish them, ``jobs.py``).

Every write of a job's record publishes one JSON message on ``RedisKeys.events(id)``:
``{"job_id", "owner", "status", "completed_chunks"}``, plus ``"chunks": [indices]`` when the write
recorded finished chunks. A replica reads all of its service's events through one pattern
subscription (``all_job_events``) and fans them out in process (``serve_app/live_events.py``), so the
number of Redis pub/sub connections does not grow with the number of people watching.
"""

from __future__ import annotations

from typing import AsyncIterator, NamedTuple, Optional

import orjson
import redis.asyncio as aioredis

from compute.storage.keys import RedisKeys

__all__ = ["JobEvent", "all_job_events", "job_events", "parse_event"]


class JobEvent(NamedTuple):
    """One change of one job. ``owner``/``status`` are None when a message lacks them: the change
    still happened (the job id comes from the channel), readers just learn less from it."""

    job_id: str
    owner: Optional[str]
    status: Optional[str]
    completed_chunks: Optional[int]
    chunks: tuple[int, ...]


def parse_event(keys: RedisKeys, channel: str, data: str | bytes) -> JobEvent:
    """The event a message on ``channel`` stands for; a malformed body still names the job."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        body = {}
    owner, status, done = body.get("owner"), body.get("status"), body.get("completed_chunks")
    chunks = body.get("chunks")
    return JobEvent(
        job_id=keys.job_id_of_channel(channel),
        owner=owner if isinstance(owner, str) else None,
        status=status if isinstance(status, str) else None,
        completed_chunks=done if isinstance(done, int) and not isinstance(done, bool) else None,
        # cjson encodes an empty Lua table as {}; anything but a list of ints means "none named"
        chunks=tuple(i for i in chunks if isinstance(i, int)) if isinstance(chunks, list) else (),
    )


async def all_job_events(redis: aioredis.Redis, keys: RedisKeys,
                         heartbeat: float = 5.0) -> AsyncIterator[Optional[JobEvent]]:
    """Yield ``None`` once subscribed to every job's channel of the service ``keys`` names, then each
    change, and ``None`` after every ``heartbeat`` seconds of silence. One pub/sub connection."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(keys.events_pattern())
    try:
        yield None
        while True:
            message = await pubsub.get_message(timeout=heartbeat)
            yield parse_event(keys, message["channel"], message["data"]) if message else None
    finally:
        await pubsub.aclose()


async def job_events(redis: aioredis.Redis, keys: RedisKeys, job_id: str,
                     heartbeat: float = 5.0) -> AsyncIterator[Optional[dict]]:
    """One job's messages, for a process without a replica's shared subscription (``cluster submit``):
    ``None`` once subscribed, then each message body, and ``None`` after ``heartbeat`` s of silence."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(keys.events(job_id))
    try:
        yield None
        while True:
            message = await pubsub.get_message(timeout=heartbeat)
            yield orjson.loads(message["data"]) if message else None
    finally:
        await pubsub.aclose()
