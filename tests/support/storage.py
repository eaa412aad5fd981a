"""Helpers for the storage tests (compute/storage/) against a real redis-server: a namespace per test,
job records, and exact views of what a call published and whether it wrote."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import redis.asyncio as aioredis

from compute.records import ChunkFact, JobRecord
from compute.storage.keys import RedisKeys


def unique_prefix() -> str:
    """A namespace of its own for one test, so tests sharing the session's Redis never meet."""
    return f"test-{uuid.uuid4().hex[:8]}:"


def owner() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def record(owner: str, chunks: int = 2) -> JobRecord:
    return JobRecord(job_id=str(uuid.uuid4()), owner=owner, kind="range_sum", params={"n": 10}, chunks=chunks,
                     total_chunks=chunks, created_at=time.time())


def fact(i: int) -> ChunkFact:
    return ChunkFact(index=i, start=i, end=i + 1, status="completed", result=1)


async def take(events, count: int, timeout: float = 10) -> list:
    """The first ``count`` items an events iterator yields, skipping its ``None`` heartbeats."""
    taken = []
    async with asyncio.timeout(timeout):
        while len(taken) < count:
            if (item := await events.__anext__()) is not None:
                taken.append(item)
    return taken


async def writes(client: aioredis.Redis) -> int:
    """Redis' count of writes since start (``rdb_changes_since_last_save``; the test servers never
    save): unchanged across a call means the call wrote nothing. Only for a Redis no one else uses."""
    return (await client.info("persistence"))["rdb_changes_since_last_save"]


class EventLog:
    """Every change event of one namespace, counted exactly: ``drain`` publishes a marker on a
    channel of the same pattern and returns what arrived before it, so "exactly one" needs no sleep
    (Redis delivers in the order it ran the commands)."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys):
        self.client, self.keys = client, keys
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)

    async def __aenter__(self) -> "EventLog":
        await self.pubsub.psubscribe(self.keys.events_pattern())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.pubsub.aclose()

    async def drain(self, timeout: float = 5) -> list[tuple[str, dict]]:
        """(channel's job id, message body) of each event since the last drain, in order."""
        marker = self.keys.events(f"marker-{uuid.uuid4().hex}")
        await self.client.publish(marker, "{}")
        seen = []
        async with asyncio.timeout(timeout):
            while True:
                message = await self.pubsub.get_message(timeout=timeout)
                if message is None:
                    continue
                if message["channel"] == marker:
                    return seen
                seen.append((self.keys.job_id_of_channel(message["channel"]), orjson.loads(message["data"])))
