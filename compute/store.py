"""The only module that talks to Redis: job records, chunk facts, events, idempotency keys.

Layout (every key expires after ``JOB_TTL_SECONDS`` unless noted):
- ``job:{id}``          hash, the job record (numbers as decimal strings, so results stay exact)
- ``job:{id}:chunks``   hash, chunk index -> JSON ChunkFact, written once per finished chunk
- ``job-events:{id}``   pub/sub channel: every write of a job's record publishes one JSON message
                        ``{job_id, owner, status, completed_chunks[, chunks: [indices]]}`` (the
                        replicas' status caches and live streams rely on it: a new write path must
                        publish too)
- ``jobs:active``       sorted set of pending/running job ids (no TTL), for the recovery pass
- ``owner:{o}:jobs``    sorted set of an owner's job ids by creation time
- ``owner:{o}:active``  set of an owner's pending/running job ids (no TTL): the active-job limit
- ``owner:{o}:status:{s}`` sorted set of an owner's job ids in status s, by creation time
- ``owner:{o}:stats``   hash of counters updated at each state change
- ``idem:{scope}:{key}`` the first response for an idempotency key
- ``stats:jobs``        hash of service-wide counters; ``stats:chunks-per-second:{t}`` per-second chunk counts

State changes run as Lua scripts, so a reader never sees ``completed`` without its result and a
late chunk report cannot reopen a finished job.
"""

from __future__ import annotations

import time
from typing import Iterable, Optional

import orjson
import redis.asyncio as aioredis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.asyncio.retry import Retry

from compute.records import ChunkFact, JobRecord, JobStatus

__all__ = ["JobStore", "RedisError", "StoreUnavailable"]

ACTIVE_KEY = "jobs:active"
GLOBAL_STATS_KEY = "stats:jobs"
CHUNK_RATE_PREFIX = "stats:chunks-per-second:"

# Shared Lua helpers. Keys of an owner's indexes are built here from the record's owner, so like
# the account scripts this assumes a single Redis (not Cluster). Only owners whose jobs are indexed
# (``owner:{o}:jobs`` lists the job; demo jobs are not) get an active set and status indexes.
_LUA_LIB = """
local function owner_key(owner, suffix) return 'owner:' .. owner .. ':' .. suffix end
local function indexed(owner, id) return redis.call('ZSCORE', owner_key(owner, 'jobs'), id) ~= false end
local function move_status(owner, id, from, to, created, ttl)
  redis.call('ZREM', owner_key(owner, 'status:' .. from), id)
  local key = owner_key(owner, 'status:' .. to)
  redis.call('ZADD', key, created, id)
  redis.call('EXPIRE', key, ttl)
end
"""

# Create a pending job, unless its owner already has ``max active`` pending/running jobs.
# KEYS: 1 job, 2 active set (all owners), 3 global stats, 4 owner jobs, 5 owner stats, 6 owner active
#       set, 7 events channel
# ARGV: 1 job id, 2 created_at, 3 ttl, 4 index owner (0/1), 5 max active (0: no limit), 6 owner,
#       then the record's field/value pairs
# The owner's active set is the authority for the limit: ids whose record vanished (TTL, eviction)
# before finishing are dropped from it here, so they can never lock the owner out.
_CREATE = _LUA_LIB + """
if ARGV[5] ~= '0' then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[6])) do
    if redis.call('EXISTS', 'job:' .. id) == 0 then redis.call('SREM', KEYS[6], id) end
  end
  if redis.call('SCARD', KEYS[6]) >= tonumber(ARGV[5]) then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'total_jobs', 1)
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  redis.call('EXPIRE', KEYS[4], ARGV[3])
  redis.call('HINCRBY', KEYS[5], 'total_jobs', 1)
  redis.call('SADD', KEYS[6], ARGV[1])
  local pending = owner_key(ARGV[6], 'status:pending')
  redis.call('ZADD', pending, ARGV[2], ARGV[1])
  redis.call('EXPIRE', pending, ARGV[3])
end
redis.call('PUBLISH', KEYS[7], cjson.encode({job_id=ARGV[1], owner=ARGV[6], status='pending',
  completed_chunks=0}))
return 1
"""

# KEYS: 1 job, 2 events channel. ARGV: 1 started_at, 2 job id, 3 ttl
_MARK_RUNNING = _LUA_LIB + """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
local owner, created, done = unpack(redis.call('HMGET', KEYS[1], 'owner', 'created_at', 'completed_chunks'))
if indexed(owner, ARGV[2]) then move_status(owner, ARGV[2], 'pending', 'running', created, ARGV[3]) end
redis.call('PUBLISH', KEYS[2], cjson.encode({job_id=ARGV[2], owner=owner, status='running',
  completed_chunks=tonumber(done)}))
return 1
"""

# Record a batch of finished chunks (each index once).
# KEYS: 1 job, 2 chunks hash, 3 events channel, 4 this second's chunk counter
# ARGV: 1 ttl, 2 job id, then index/fact pairs
_CHUNKS_DONE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'pending' then return 0 end
local added = {}
for i = 3, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then added[#added + 1] = tonumber(ARGV[i]) end
end
if #added == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('INCRBY', KEYS[4], #added)
redis.call('EXPIRE', KEYS[4], 120)
local done = redis.call('HINCRBY', KEYS[1], 'completed_chunks', #added)
redis.call('PUBLISH', KEYS[3], cjson.encode({job_id=ARGV[2], owner=redis.call('HGET', KEYS[1], 'owner'),
  status=status, completed_chunks=done, chunks=added}))
return done
"""

# Move a job to a terminal state with its result and last chunk facts, once.
# KEYS: 1 job, 2 chunks hash, 3 events channel, 4 active set (all owners), 5 owner stats, 6 job id,
#       7 global stats, 8 owner active set
# ARGV: 1 status, 2 result, 3 detail, 4 completed_at, 5 ttl, then index/fact pairs
# Returns -1 when the record is gone (it is then dropped from the active sets), 0 when already final.
_FINISH = _LUA_LIB + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('ZREM', KEYS[4], KEYS[6])
  redis.call('SREM', KEYS[8], KEYS[6])
  return -1
end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
local added = {}
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  added[#added + 1] = tonumber(ARGV[i])
end
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
redis.call('SREM', KEYS[8], KEYS[6])
local owner, created = unpack(redis.call('HMGET', KEYS[1], 'owner', 'created_at'))
if indexed(owner, KEYS[6]) then move_status(owner, KEYS[6], status, ARGV[1], created, ARGV[5]) end
redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
redis.call('HINCRBY', KEYS[7], ARGV[1], 1)
if ARGV[1] == 'completed' then
  redis.call('HINCRBY', KEYS[5], 'duration_ms_sum',
    math.floor((tonumber(ARGV[4]) - tonumber(started)) * 1000 + 0.5))
end
local message = {job_id=KEYS[6], owner=owner, status=ARGV[1], completed_chunks=done}
if #added > 0 then message.chunks = added end
redis.call('PUBLISH', KEYS[3], cjson.encode(message))
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


def _owner_active_key(owner: str) -> str:
    return f"owner:{owner}:active"


def _owner_status_key(owner: str, status: JobStatus) -> str:
    return f"owner:{owner}:status:{status.value}"


def connection_options() -> dict:
    """Timeouts and retries of every Redis client of the service (jobs, accounts, rate limits).

    After a Redis restart every pooled connection is stale and fails on first use: a command that
    hit a connection error is retried on a fresh connection (twice, 50-500 ms apart) instead of
    answering 503 while Redis is back. A timeout is not retried.
    """
    return {"socket_connect_timeout": 2, "socket_timeout": 5, "retry_on_timeout": False,
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            "retry_on_error": [RedisConnectionError]}


def _encode(value) -> str:
    return "" if value is None else str(value)


def _decode_record(raw: dict) -> Optional[JobRecord]:
    if not raw:
        return None
    data = {k: (None if v == "" else v) for k, v in raw.items()}
    return JobRecord.model_validate(data)


class JobStore:
    def __init__(self, redis_url: str, ttl_seconds: int = 24 * 3600):
        self.redis = aioredis.from_url(redis_url, decode_responses=True, health_check_interval=15,
                                       **connection_options())
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
                _owner_stats_key(record.owner), _owner_active_key(record.owner), events_channel(record.job_id)]
        args = [record.job_id, record.created_at, self.ttl, int(index_owner), max_active, record.owner, *fields]
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
            await self._mark_running(keys=[_job_key(job_id), events_channel(job_id)],
                                     args=[time.time(), job_id, self.ttl], client=pipe)
            pipe.hgetall(_job_key(job_id))
            pipe.hgetall(_chunks_key(job_id))
            started, record, chunks = await pipe.execute()
        facts = {int(k): ChunkFact.model_validate_json(v) for k, v in chunks.items()}
        return bool(started), _decode_record(record), facts

    async def record_chunks_done(self, job_id: str, facts: Iterable[ChunkFact]) -> int:
        """Store finished chunks once each; returns the new completed count, or 0 if nothing changed."""
        keys = [_job_key(job_id), _chunks_key(job_id), events_channel(job_id),
                f"{CHUNK_RATE_PREFIX}{int(time.time())}"]
        args: list = [self.ttl, job_id]
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
            _owner_active_key(record.owner),
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

    async def owner_job_ids_by_status(self, owner: str, status: JobStatus, offset: int,
                                      limit: int) -> tuple[int, list[str]]:
        """A page of an owner's jobs in one status, newest first, from that status's index (O(page))."""
        key = _owner_status_key(owner, status)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(key)
            pipe.zrevrange(key, offset, offset + limit - 1)
            total, ids = await pipe.execute()
        return int(total), list(ids)

    async def forget_from_status_index(self, owner: str, status: JobStatus, job_ids: Iterable[str]) -> None:
        """Drop ids whose records are gone (TTL, eviction) from a status index."""
        job_ids = list(job_ids)
        if job_ids:
            await self.redis.zrem(_owner_status_key(owner, status), *job_ids)

    async def owner_active_count(self, owner: str) -> int:
        return int(await self.redis.scard(_owner_active_key(owner)))

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

    return RedisStorage("async+" + redis_url, implementation="redispy", **connection_options())
