"""The only module that talks to Redis: job records, chunk facts, events, idempotency keys.

Layout (every key expires after ``JOB_TTL_SECONDS`` unless noted):
- ``job:{id}``          hash, the job record (numbers as decimal strings, so results stay exact)
- ``job:{id}:chunks``   hash, chunk index -> JSON ChunkFact, written once per finished chunk
- ``job-events:{id}``   pub/sub channel, one message per state write (live views follow one job; replicas
                        pattern-subscribe to all of them to keep their status caches fresh)
- ``jobs:active``       sorted set of pending/running job ids (no TTL), for the recovery pass
- ``owner:{o}:jobs``    sorted set of an owner's job ids by creation time
- ``owner:{o}:stats``   hash of counters updated at each state change
- ``idem:{scope}:{key}`` the first response for an idempotency key
- ``stats:jobs``        hash of service-wide counters; ``stats:chunks-per-second:{t}`` per-second chunk counts

State changes run as Lua scripts, so a reader never sees ``completed`` without its result and a
late chunk report cannot reopen a finished job.
"""

from __future__ import annotations

import time
from typing import AsyncIterator, Iterable, Optional

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from compute.records import ChunkFact, JobRecord, JobStatus

__all__ = ["JobStore", "RedisError", "StoreUnavailable"]

ACTIVE_KEY = "jobs:active"
GLOBAL_STATS_KEY = "stats:jobs"
CHUNK_RATE_PREFIX = "stats:chunks-per-second:"

# KEYS: job, active set, global stats, owner jobs, owner stats
# ARGV: job id, created_at, ttl, index owner (0/1), max active (0: no limit), then field/value pairs
_CREATE = """
if ARGV[5] ~= '0' then
  local s = redis.call('HMGET', KEYS[5], 'total_jobs', 'completed', 'failed', 'cancelled')
  local active = (tonumber(s[1]) or 0) - (tonumber(s[2]) or 0) - (tonumber(s[3]) or 0) - (tonumber(s[4]) or 0)
  if active >= tonumber(ARGV[5]) then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'total_jobs', 1)
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  redis.call('EXPIRE', KEYS[4], ARGV[3])
  redis.call('HINCRBY', KEYS[5], 'total_jobs', 1)
end
return 1
"""

_MARK_RUNNING = """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
redis.call('PUBLISH', KEYS[2], cjson.encode({status='running',
  completed_chunks=tonumber(redis.call('HGET', KEYS[1], 'completed_chunks'))}))
return 1
"""

# ARGV: ttl, then index/fact pairs (a batch of finished chunks)
_CHUNKS_DONE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'pending' then return 0 end
local added = 0
for i = 2, #ARGV, 2 do added = added + redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) end
if added == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('INCRBY', KEYS[4], added)
redis.call('EXPIRE', KEYS[4], 120)
local done = redis.call('HINCRBY', KEYS[1], 'completed_chunks', added)
redis.call('PUBLISH', KEYS[3], cjson.encode({status=status, completed_chunks=done}))
return done
"""

# ARGV: status, result, detail, completed_at, ttl, then index/fact pairs
_FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
if #ARGV >= 6 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
local done = redis.call('HLEN', KEYS[2])
local started = redis.call('HGET', KEYS[1], 'started_at')
if not started or started == '' then
  started = ARGV[4]
  redis.call('HSET', KEYS[1], 'started_at', started)
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[2], 'detail', ARGV[3],
  'completed_at', ARGV[4], 'completed_chunks', done)
redis.call('ZREM', KEYS[4], KEYS[6])
redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
redis.call('HINCRBY', KEYS[7], ARGV[1], 1)
if ARGV[1] == 'completed' then
  redis.call('HINCRBY', KEYS[5], 'duration_ms_sum',
    math.floor((tonumber(ARGV[4]) - tonumber(started)) * 1000 + 0.5))
end
redis.call('PUBLISH', KEYS[3], cjson.encode({status=ARGV[1], completed_chunks=done}))
return 1
"""


class StoreUnavailable(RuntimeError):
    """Redis could not be reached."""


def _job_key(job_id: str) -> str:
    return f"job:{job_id}"


def _chunks_key(job_id: str) -> str:
    return f"job:{job_id}:chunks"


def events_channel(job_id: str) -> str:
    return f"job-events:{job_id}"


def _owner_jobs_key(owner: str) -> str:
    return f"owner:{owner}:jobs"


def _owner_stats_key(owner: str) -> str:
    return f"owner:{owner}:stats"


def _encode(value) -> str:
    return "" if value is None else str(value)


def _decode_record(raw: dict) -> Optional[JobRecord]:
    if not raw:
        return None
    data = {k: (None if v == "" else v) for k, v in raw.items()}
    return JobRecord.model_validate(data)


class JobStore:
    def __init__(self, redis_url: str, ttl_seconds: int = 24 * 3600):
        self.redis = aioredis.from_url(
            redis_url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=15,
            retry_on_timeout=False,
        )
        self.ttl = ttl_seconds
        self._create = self.redis.register_script(_CREATE)
        self._mark_running = self.redis.register_script(_MARK_RUNNING)
        self._chunks_done = self.redis.register_script(_CHUNKS_DONE)
        self._finish = self.redis.register_script(_FINISH)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    # -- jobs ---------------------------------------------------------------------------

    async def create_job(self, record: JobRecord, *, index_owner: bool = True, max_active: int = 0) -> bool:
        """Store a new pending job; False (and nothing written) when the owner already has
        ``max_active`` pending/running jobs. The check and the write are one atomic step."""
        fields = []
        for name, value in record.model_dump().items():
            fields += [name, _encode(value.value if isinstance(value, JobStatus) else value)]
        keys = [_job_key(record.job_id), ACTIVE_KEY, GLOBAL_STATS_KEY, _owner_jobs_key(record.owner),
                _owner_stats_key(record.owner)]
        args = [record.job_id, record.created_at, self.ttl, int(index_owner), max_active, *fields]
        return await self._create(keys=keys, args=args) == 1

    async def get_job(self, job_id: str) -> Optional[JobRecord]:
        return _decode_record(await self.redis.hgetall(_job_key(job_id)))

    async def get_jobs(self, job_ids: Iterable[str]) -> list[JobRecord]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(_job_key(job_id))
            rows = await pipe.execute()
        return [record for record in map(_decode_record, rows) if record is not None]

    async def get_chunk_facts(self, job_id: str) -> dict[int, ChunkFact]:
        raw = await self.redis.hgetall(_chunks_key(job_id))
        return {int(k): ChunkFact.model_validate_json(v) for k, v in raw.items()}

    async def active_job_ids(self) -> list[str]:
        return list(await self.redis.zrange(ACTIVE_KEY, 0, -1))

    async def forget_active(self, job_id: str) -> None:
        await self.redis.zrem(ACTIVE_KEY, job_id)

    async def start_job(self, job_id: str) -> tuple[bool, Optional[JobRecord], dict[int, ChunkFact]]:
        """Mark a pending job running and read its record and finished chunks, in one round trip.

        Returns (whether this call started it, the record, the chunk facts already stored)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            await self._mark_running(keys=[_job_key(job_id), events_channel(job_id)], args=[time.time()], client=pipe)
            pipe.hgetall(_job_key(job_id))
            pipe.hgetall(_chunks_key(job_id))
            started, record, chunks = await pipe.execute()
        facts = {int(k): ChunkFact.model_validate_json(v) for k, v in chunks.items()}
        return bool(started), _decode_record(record), facts

    async def record_chunks_done(self, job_id: str, facts: Iterable[ChunkFact]) -> int:
        """Store finished chunks once each; returns the new completed count, or 0 if nothing changed."""
        keys = [_job_key(job_id), _chunks_key(job_id), events_channel(job_id),
                f"{CHUNK_RATE_PREFIX}{int(time.time())}"]
        args: list = [self.ttl]
        for fact in facts:
            args += [fact.index, fact.model_dump_json()]
        return int(await self._chunks_done(keys=keys, args=args))

    async def finish(
        self,
        record: JobRecord,
        status: JobStatus,
        *,
        result: Optional[int] = None,
        detail: Optional[str] = None,
        facts: Iterable[ChunkFact] = (),
    ) -> bool:
        """Move a job to a terminal state with its result and chunk facts in one atomic step."""
        keys = [
            _job_key(record.job_id),
            _chunks_key(record.job_id),
            events_channel(record.job_id),
            ACTIVE_KEY,
            _owner_stats_key(record.owner),
            record.job_id,
            GLOBAL_STATS_KEY,
        ]
        args: list = [status.value, _encode(result), _encode(detail), time.time(), self.ttl]
        for fact in facts:
            args += [fact.index, fact.model_dump_json()]
        return await self._finish(keys=keys, args=args) == 1

    # -- owners -------------------------------------------------------------------------

    async def owner_job_ids(self, owner: str, offset: int, limit: int) -> tuple[int, list[str]]:
        key = _owner_jobs_key(owner)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(key)
            pipe.zrevrange(key, offset, offset + limit - 1)
            total, ids = await pipe.execute()
        return int(total), list(ids)

    async def owner_stats(self, owner: str) -> dict[str, int]:
        raw = await self.redis.hgetall(_owner_stats_key(owner))
        return {k: int(v) for k, v in raw.items()}

    async def service_stats(self, window_seconds: int = 60) -> dict:
        """Service-wide counters, active job count and chunks finished per second lately."""
        now = int(time.time())
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(GLOBAL_STATS_KEY)
            pipe.zcard(ACTIVE_KEY)
            pipe.mget([f"{CHUNK_RATE_PREFIX}{t}" for t in range(now - window_seconds, now)])
            counters, active, per_second = await pipe.execute()
        counters = {k: int(v) for k, v in counters.items()}
        chunks = sum(int(v) for v in per_second if v)
        return {"counters": counters, "active": int(active), "chunks_per_second": chunks / window_seconds}

    # -- events -------------------------------------------------------------------------

    async def job_events(self, job_id: str, heartbeat: float = 5.0) -> AsyncIterator[Optional[dict]]:
        """Yield ``None`` once subscribed, then each change message of a job, and ``None``
        after every ``heartbeat`` seconds of silence."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(events_channel(job_id))
        try:
            yield None
            while True:
                message = await pubsub.get_message(timeout=heartbeat)
                yield orjson.loads(message["data"]) if message else None
        finally:
            await pubsub.aclose()

    async def changed_job_ids(self, heartbeat: float = 5.0) -> AsyncIterator[Optional[str]]:
        """Yield ``None`` once subscribed to every job's events channel, then the id of each job
        whose record changes (every state write publishes), and ``None`` after ``heartbeat``
        seconds of silence."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.psubscribe(events_channel("*"))
        try:
            yield None
            while True:
                message = await pubsub.get_message(timeout=heartbeat)
                yield message["channel"].removeprefix(events_channel("")) if message else None
        finally:
            await pubsub.aclose()

    # -- idempotency --------------------------------------------------------------------

    async def claim_idempotency_key(self, scope: str, key: str, entry: dict) -> Optional[dict]:
        """Store ``entry`` under the key unless one is there; return the existing entry if so."""
        name = f"idem:{scope}:{key}"
        if await self.redis.set(name, orjson.dumps(entry), nx=True, ex=self.ttl):
            return None
        existing = await self.redis.get(name)
        return orjson.loads(existing) if existing else None

    async def release_idempotency_key(self, scope: str, key: str) -> None:
        await self.redis.delete(f"idem:{scope}:{key}")

    async def get_chunk_facts_for(self, job_id: str, indices: Iterable[int]) -> dict[int, ChunkFact]:
        """The named chunks' facts (those recorded), for live views that send only what is new."""
        indices = list(indices)
        raw = await self.redis.hmget(_chunks_key(job_id), indices) if indices else []
        return {i: ChunkFact.model_validate_json(v) for i, v in zip(indices, raw) if v is not None}



def rate_limit_storage(redis_url: str):
    """Shared, async rate-limit counters in the same Redis (used by the HTTP edge's limiter)."""
    from limits.aio.storage import RedisStorage

    return RedisStorage(
        "async+" + redis_url, implementation="redispy", socket_connect_timeout=2, socket_timeout=5
    )
