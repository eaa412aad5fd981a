"""Job records in Redis: the record, its chunk facts, the owner and status indexes, the counters.

``JobStore`` is the only code that writes a job record (the key names are in ``keys.py``, the Lua
scripts that write in ``job_scripts.py``). Params and results are stored as JSON (Python's ``json``,
which keeps integers of any size exact); other numbers as decimal strings.

THE RULE: every write that changes a job record publishes exactly one change event on the job's
channel (``RedisKeys.events``), in the same atomic step, as JSON
``{"job_id", "owner", "status", "completed_chunks"}`` plus ``"chunks": [indices]`` when the write
recorded finished chunks. A call that changes no record publishes nothing. The replicas' status
caches and live streams (``serve_app/live_events.py``) rely on it: a cached running status is
dropped only when its event arrives. A new write path must publish too;
``tests/compute/storage/test_jobs.py`` calls every public method and fails for one that writes a
record without its event, or that it does not know.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Optional

from compute.records import ChunkFact, JobRecord, JobStatus
from compute.storage import job_scripts
from compute.storage.connection import RedisError, connect
from compute.storage.keys import RedisKeys

__all__ = ["JobStore", "RedisError"]


JSON_FIELDS = ("params", "result")


def _encode(value) -> str:
    return "" if value is None else str(value)


def _encode_json(value: Any) -> str:
    return "" if value is None else json.dumps(value, separators=(",", ":"))


def _decode_record(raw: dict) -> Optional[JobRecord]:
    if not raw:
        return None
    data = {k: (None if v == "" else v) for k, v in raw.items()}
    for name in JSON_FIELDS:
        if data.get(name) is not None:
            data[name] = json.loads(data[name])
    if data.get("params") is None:  # a record of a version before params: the range kinds' n
        data["params"] = {"n": int(data["n"])} if data.get("n") is not None else {}
    return JobRecord.model_validate(data)


def _fact_args(facts: Iterable[ChunkFact]) -> list:
    args: list = []
    for fact in facts:
        args += [fact.index, fact.model_dump_json()]
    return args


class JobStore:
    """Job records of the service whose keys start with ``key_prefix`` (``REDIS_KEY_PREFIX``)."""

    def __init__(self, redis_url: str, ttl_seconds: int = 24 * 3600, *, key_prefix: str):
        self.redis = connect(redis_url)
        self.keys = RedisKeys(key_prefix)
        self.ttl = ttl_seconds
        self._create = self.redis.register_script(job_scripts.CREATE)
        self._mark_running = self.redis.register_script(job_scripts.MARK_RUNNING)
        self._chunks_done = self.redis.register_script(job_scripts.CHUNKS_DONE)
        self._finish = self.redis.register_script(job_scripts.FINISH)
        self._queue_place = self.redis.register_script(job_scripts.QUEUE_PLACE)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    # -- writes (each publishes its change: see THE RULE above) ----------------------------

    async def create_job(self, record: JobRecord, *, inputs: Optional[list] = None, index_owner: bool = True,
                         max_active: int = 0) -> bool:
        """Store a new job (pending, or a completed copy of a cached result) with its chunks'
        ``inputs`` (None: the runner splits it again); False (and nothing written) when the owner already has ``max_active``
        pending/running jobs. The check and the write are one atomic step."""
        fields = []
        for name, value in record.model_dump().items():
            if name in JSON_FIELDS:
                fields += [name, _encode_json(value)]
            else:
                fields += [name, _encode(value.value if isinstance(value, JobStatus) else value)]
        k, job_id, owner = self.keys, record.job_id, record.owner
        keys = [k.job(job_id), k.active_jobs, k.job_stats, k.owner_jobs(owner), k.owner_stats(owner),
                k.owner_active(owner), k.owner_status(owner, record.status), k.events(job_id), k.inputs(job_id)]
        args = [k.prefix, job_id, record.created_at, self.ttl, int(index_owner), max_active, owner,
                _encode_json(inputs), *fields]
        return await self._create(keys=keys, args=args) == 1

    async def mark_running(self, job_id: str) -> bool:
        """Move a pending job to running (its first chunk went into Ray); False if it was not pending."""
        k = self.keys
        return await self._mark_running(keys=[k.job(job_id), k.events(job_id)],
                                        args=[k.prefix, job_id, time.time(), self.ttl]) == 1

    async def show_queue_place(self, job_id: str, position: int, detail: str) -> bool:
        """Write a pending job's place in the queue and what it waits for; False when it is not
        pending or both are unchanged."""
        k = self.keys
        return await self._queue_place(keys=[k.job(job_id), k.events(job_id)], args=[job_id, position, detail]) == 1

    async def record_chunks_done(self, job_id: str, facts: Iterable[ChunkFact]) -> int:
        """Store finished chunks once each; returns the new completed count, or 0 if nothing changed."""
        k = self.keys
        keys = [k.job(job_id), k.chunks(job_id), k.events(job_id), k.chunk_rate(int(time.time()))]
        return int(await self._chunks_done(keys=keys, args=[job_id, self.ttl, *_fact_args(facts)]))

    async def finish(
        self,
        record: JobRecord,
        status: JobStatus,
        *,
        result: Any = None,
        detail: Optional[str] = None,
        facts: Iterable[ChunkFact] = (),
    ) -> bool:
        """Move a job to a terminal state with its result and chunk facts in one atomic step; False
        when it was already final or its record is gone."""
        k, job_id, owner = self.keys, record.job_id, record.owner
        keys = [k.job(job_id), k.chunks(job_id), k.events(job_id), k.active_jobs, k.owner_stats(owner),
                k.job_stats, k.owner_active(owner)]
        args = [k.prefix, job_id, status.value, _encode_json(result), _encode(detail), time.time(), self.ttl,
                *_fact_args(facts)]
        return await self._finish(keys=keys, args=args) == 1

    # -- index clean-up and the result cache (no record changes, so no events) ------------------

    async def remember_result(self, record: JobRecord, digest: str, seconds: int) -> None:
        """Name a completed job as its owner's cached result for its inputs (``digest``) for ``seconds``."""
        await self.redis.set(self.keys.result_cache(record.owner, digest), record.job_id, ex=seconds)

    async def cached_result(self, owner: str, digest: str) -> Optional[JobRecord]:
        """The owner's completed job cached for these inputs, if it is still there."""
        job_id = await self.redis.get(self.keys.result_cache(owner, digest))
        record = await self.get_job(job_id) if job_id else None
        return record if record is not None and record.status is JobStatus.completed else None

    async def forget_active(self, job_id: str) -> None:
        """Drop an id whose record is gone from the recovery index."""
        await self.redis.zrem(self.keys.active_jobs, job_id)

    async def forget_from_status_index(self, owner: str, status: JobStatus, job_ids: Iterable[str]) -> None:
        """Drop ids whose records are gone (TTL, eviction) from a status index."""
        job_ids = list(job_ids)
        if job_ids:
            await self.redis.zrem(self.keys.owner_status(owner, status), *job_ids)

    # -- reads -----------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Optional[JobRecord]:
        return _decode_record(await self.redis.hgetall(self.keys.job(job_id)))

    async def load_job(self, job_id: str) -> tuple[Optional[JobRecord], dict[int, ChunkFact], Optional[list]]:
        """What the runner needs to run a job, in one round trip: the record, the chunk facts already
        stored and the chunk inputs (None for a record stored before inputs were)."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(k.job(job_id))
            pipe.hgetall(k.chunks(job_id))
            pipe.get(k.inputs(job_id))
            record, chunks, inputs = await pipe.execute()
        facts = {int(i): ChunkFact.model_validate_json(v) for i, v in chunks.items()}
        return _decode_record(record), facts, (json.loads(inputs) if inputs else None)

    async def get_jobs(self, job_ids: Iterable[str]) -> list[JobRecord]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.keys.job(job_id))
            rows = await pipe.execute()
        return [record for record in map(_decode_record, rows) if record is not None]

    async def get_chunk_facts(self, job_id: str) -> dict[int, ChunkFact]:
        raw = await self.redis.hgetall(self.keys.chunks(job_id))
        return {int(k): ChunkFact.model_validate_json(v) for k, v in raw.items()}

    async def existing_job_ids(self, job_ids: Iterable[str]) -> set[str]:
        """Which of these ids still have a record."""
        job_ids = list(job_ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(self.keys.job(job_id))
            found = await pipe.execute()
        return {job_id for job_id, exists in zip(job_ids, found) if exists}

    async def get_chunk_inputs(self, job_id: str) -> Optional[list]:
        raw = await self.redis.get(self.keys.inputs(job_id))
        return json.loads(raw) if raw else None

    async def get_chunk_progress(self, job_id: str) -> dict[int, float]:
        """Running chunks' progress as reported from inside them (``storage/chunk_progress.py``)."""
        raw = await self.redis.hgetall(self.keys.chunk_progress(job_id))
        return {int(k): float(v) for k, v in raw.items()}

    async def get_chunk_facts_for(self, job_id: str, indices: Iterable[int]) -> dict[int, ChunkFact]:
        """The named chunks' facts (those recorded), for live views that send only what is new."""
        indices = list(indices)
        raw = await self.redis.hmget(self.keys.chunks(job_id), indices) if indices else []
        return {i: ChunkFact.model_validate_json(v) for i, v in zip(indices, raw) if v is not None}

    async def active_job_ids(self, created_before: float = float("inf")) -> list[str]:
        """Pending/running job ids, oldest first (only those created before ``created_before``)."""
        return list(await self.redis.zrangebyscore(self.keys.active_jobs, "-inf", created_before))

    async def owner_job_ids(self, owner: str, offset: int, limit: int) -> tuple[int, list[str]]:
        """A page of an owner's jobs, newest first."""
        return await self._page(self.keys.owner_jobs(owner), offset, limit)

    async def owner_job_ids_by_status(self, owner: str, status: JobStatus, offset: int,
                                      limit: int) -> tuple[int, list[str]]:
        """A page of an owner's jobs in one status, newest first, from that status's index (O(page))."""
        return await self._page(self.keys.owner_status(owner, status), offset, limit)

    async def _page(self, key: str, offset: int, limit: int) -> tuple[int, list[str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(key)
            pipe.zrevrange(key, offset, offset + limit - 1)
            total, ids = await pipe.execute()
        return int(total), list(ids)

    async def owner_active_count(self, owner: str) -> int:
        return int(await self.redis.scard(self.keys.owner_active(owner)))

    async def owner_stats(self, owner: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self.keys.owner_stats(owner))
        return {k: int(v) for k, v in raw.items()}

    async def service_stats(self, window_seconds: int = 60) -> dict:
        """Service-wide counters, active job count and chunks finished per second lately."""
        now = int(time.time())
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.job_stats)
            pipe.zcard(self.keys.active_jobs)
            pipe.mget([self.keys.chunk_rate(t) for t in range(now - window_seconds, now)])
            counters, active, per_second = await pipe.execute()
        counters = {k: int(v) for k, v in counters.items()}
        chunks = sum(int(v) for v in per_second if v)
        return {"counters": counters, "active": int(active), "chunks_per_second": chunks / window_seconds}
