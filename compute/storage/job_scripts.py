"""The Lua scripts behind every change of a job record (``JobStore`` in ``jobs.py`` runs them).

A state change is one script, so it is atomic: a reader never sees ``completed`` without its
result, the active-job limit cannot be passed by two concurrent submissions, a late chunk report
cannot reopen a finished job, and the change event is published in the same step as the write.
Each script opens with its contract: what every KEYS and ARGV position holds and what it returns.
Keys derived from stored values (an owner read from the record, the ids in an owner's active set)
are built in Lua from the prefix passed as ARGV[1] (``keys.LUA_KEY_FUNCTIONS``), so, like the
account scripts, these assume a single Redis (not Cluster).

Every event is ``cjson`` of ``{job_id, owner, status, completed_chunks[, chunks]}``.
"""

from __future__ import annotations

from compute.storage.keys import LUA_KEY_FUNCTIONS

__all__ = ["CHUNKS_DONE", "CREATE", "FINISH", "MARK_RUNNING", "QUEUE_PLACE"]

# Only owners whose jobs are indexed (``owner:{o}:jobs`` lists the job; demo jobs are not) have
# status indexes.
_INDEXES = LUA_KEY_FUNCTIONS + """
local function indexed(p, owner, id) return redis.call('ZSCORE', owner_key(p, owner, 'jobs'), id) ~= false end
local function move_status(p, owner, id, from, to, created, ttl)
  redis.call('ZREM', owner_key(p, owner, 'status:' .. from), id)
  local key = owner_key(p, owner, 'status:' .. to)
  redis.call('ZADD', key, created, id)
  redis.call('EXPIRE', key, ttl)
end
"""

CREATE = _INDEXES + """
-- Store a new job, unless its owner already has `max_active` pending/running jobs. A job starts
-- `pending`, or `completed` when it is a copy of a cached result (RESULT_CACHE_SECONDS): such a
-- job is never active and is counted as finished at once.
-- KEYS[1] job           P job:{id}, the record
-- KEYS[2] active        P jobs:active
-- KEYS[3] job_stats     P stats:jobs
-- KEYS[4] owner_jobs    P owner:{o}:jobs
-- KEYS[5] owner_stats   P owner:{o}:stats
-- KEYS[6] owner_active  P owner:{o}:active, the authority for the limit
-- KEYS[7] owner_status  P owner:{o}:status:{the record's status}
-- KEYS[8] channel       P job-events:{id}
-- KEYS[9] inputs        P job:{id}:inputs, the chunks' inputs (JSON list)
-- ARGV[1] prefix P; ARGV[2] job id; ARGV[3] created_at (epoch s, the index score); ARGV[4] ttl (s)
-- ARGV[5] '1': index under the owner (jobs, active set, status, owner counter), '0': not (demo jobs)
-- ARGV[6] max active jobs of the owner, '0' = no limit; ARGV[7] owner; ARGV[8] the inputs JSON
-- ARGV[9..] the record's field, value pairs
-- Counts the job in job_stats: `total_jobs` and `submitted:{kind}` (GET /metrics reads them), and a
-- completed copy also as finished (`completed`, `finished:{kind}:completed`, the owner's duration).
-- Returns 1: stored, event with the record's status published; 0: refused at the limit, nothing written.
-- Ids in the owner's active set whose record vanished (TTL, eviction) are dropped before counting,
-- so they can never lock the owner out.
local job, active, job_stats, owner_jobs, owner_stats, owner_active, owner_status, channel, inputs = unpack(KEYS)
local p, id, created, ttl, index_owner, max_active, owner, chunk_inputs = unpack(ARGV, 1, 8)
if max_active ~= '0' then
  for _, other in ipairs(redis.call('SMEMBERS', owner_active)) do
    if redis.call('EXISTS', job_key(p, other)) == 0 then redis.call('SREM', owner_active, other) end
  end
  if redis.call('SCARD', owner_active) >= tonumber(max_active) then return 0 end
end
redis.call('HSET', job, unpack(ARGV, 9))
redis.call('EXPIRE', job, ttl)
redis.call('SET', inputs, chunk_inputs, 'EX', ttl)
local status, kind, done, started, ended = unpack(redis.call('HMGET', job, 'status', 'kind', 'completed_chunks',
  'started_at', 'completed_at'))
kind = kind or 'unknown'
local live = status == 'pending'
if live then redis.call('ZADD', active, created, id) end
redis.call('HINCRBY', job_stats, 'total_jobs', 1)
redis.call('HINCRBY', job_stats, 'submitted:' .. kind, 1)
if not live then
  redis.call('HINCRBY', job_stats, status, 1)
  redis.call('HINCRBY', job_stats, 'finished:' .. kind .. ':' .. status, 1)
end
if index_owner == '1' then
  redis.call('ZADD', owner_jobs, created, id)
  redis.call('EXPIRE', owner_jobs, ttl)
  redis.call('HINCRBY', owner_stats, 'total_jobs', 1)
  if live then
    redis.call('SADD', owner_active, id)
  else
    redis.call('HINCRBY', owner_stats, status, 1)
    if status == 'completed' then
      redis.call('HINCRBY', owner_stats, 'duration_ms_sum',
        math.floor((tonumber(ended) - tonumber(started)) * 1000 + 0.5))
    end
  end
  redis.call('ZADD', owner_status, created, id)
  redis.call('EXPIRE', owner_status, ttl)
end
redis.call('PUBLISH', channel, cjson.encode({job_id=id, owner=owner, status=status,
  completed_chunks=tonumber(done) or 0}))
return 1
"""

MARK_RUNNING = _INDEXES + """
-- Move a pending job to running (its first chunk has gone into Ray); clears its queue place.
-- KEYS[1] job      P job:{id}
-- KEYS[2] channel  P job-events:{id}
-- ARGV[1] prefix P; ARGV[2] job id; ARGV[3] started_at (epoch s); ARGV[4] ttl (s) of the status index
-- Returns 1: now running, event `running` published; 0: not pending (gone, running or final),
-- nothing written.
local job, channel = unpack(KEYS)
local p, id, started, ttl = unpack(ARGV)
if redis.call('HGET', job, 'status') ~= 'pending' then return 0 end
redis.call('HSET', job, 'status', 'running', 'started_at', started, 'queue_position', '', 'detail', '')
local owner, created, done = unpack(redis.call('HMGET', job, 'owner', 'created_at', 'completed_chunks'))
if indexed(p, owner, id) then move_status(p, owner, id, 'pending', 'running', created, ttl) end
redis.call('PUBLISH', channel, cjson.encode({job_id=id, owner=owner, status='running',
  completed_chunks=tonumber(done)}))
return 1
"""

QUEUE_PLACE = """
-- Show a pending job's place in the scheduler's queue and what it waits for.
-- KEYS[1] job      P job:{id}
-- KEYS[2] channel  P job-events:{id}
-- ARGV[1] job id; ARGV[2] queue position (1 = next); ARGV[3] detail
-- Returns 1: written, event published; 0: not pending, or nothing changed: nothing written.
local job, channel = unpack(KEYS)
local id, position, detail = unpack(ARGV)
local status, owner, old_position, old_detail, done = unpack(redis.call('HMGET', job, 'status', 'owner',
  'queue_position', 'detail', 'completed_chunks'))
if status ~= 'pending' or (old_position == position and old_detail == detail) then return 0 end
redis.call('HSET', job, 'queue_position', position, 'detail', detail)
redis.call('PUBLISH', channel, cjson.encode({job_id=id, owner=owner, status=status,
  completed_chunks=tonumber(done) or 0}))
return 1
"""

CHUNKS_DONE = """
-- Record finished chunks of a pending or running job, each index once.
-- KEYS[1] job         P job:{id}
-- KEYS[2] chunks      P job:{id}:chunks
-- KEYS[3] channel     P job-events:{id}
-- KEYS[4] chunk_rate  P stats:chunks-per-second:{this second}
-- ARGV[1] job id; ARGV[2] ttl (s); ARGV[3..] chunk index, JSON ChunkFact pairs
-- Returns the job's new completed count, event with `chunks` = the newly recorded indices
-- published; 0: nothing new (record gone or final, or every index already recorded), nothing written.
local job, chunks, channel, chunk_rate = unpack(KEYS)
local id, ttl = ARGV[1], ARGV[2]
local status = redis.call('HGET', job, 'status')
if status ~= 'running' and status ~= 'pending' then return 0 end
local added = {}
for i = 3, #ARGV, 2 do
  if redis.call('HSETNX', chunks, ARGV[i], ARGV[i + 1]) == 1 then added[#added + 1] = tonumber(ARGV[i]) end
end
if #added == 0 then return 0 end
redis.call('EXPIRE', chunks, ttl)
redis.call('INCRBY', chunk_rate, #added)
redis.call('EXPIRE', chunk_rate, 120)
local done = redis.call('HINCRBY', job, 'completed_chunks', #added)
redis.call('PUBLISH', channel, cjson.encode({job_id=id, owner=redis.call('HGET', job, 'owner'),
  status=status, completed_chunks=done, chunks=added}))
return done
"""

FINISH = _INDEXES + """
-- Move a job to a terminal state with its result and last chunk facts, once.
-- KEYS[1] job           P job:{id}
-- KEYS[2] chunks        P job:{id}:chunks
-- KEYS[3] channel       P job-events:{id}
-- KEYS[4] active        P jobs:active
-- KEYS[5] owner_stats   P owner:{o}:stats
-- KEYS[6] job_stats     P stats:jobs
-- KEYS[7] owner_active  P owner:{o}:active
-- ARGV[1] prefix P; ARGV[2] job id; ARGV[3] status (completed, failed or cancelled); ARGV[4] result
-- ('' = none); ARGV[5] detail ('' = none); ARGV[6] completed_at (epoch s); ARGV[7] ttl (s)
-- ARGV[8..] chunk index, JSON ChunkFact pairs (written over what is stored)
-- Counts `{status}` and `finished:{kind}:{status}` in job_stats, `{status}` in owner_stats.
-- Returns 1: finished (status, result, counters, indexes), event published with the final
-- completed count and `chunks` = the indices given; 0: already final, nothing written;
-- -1: the record is gone: the id is dropped from the active sets, no event.
local job, chunks, channel, active, owner_stats, job_stats, owner_active = unpack(KEYS)
local p, id, final, result, detail, completed, ttl = unpack(ARGV, 1, 7)
local status = redis.call('HGET', job, 'status')
if not status then
  redis.call('ZREM', active, id)
  redis.call('SREM', owner_active, id)
  return -1
end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
local added = {}
for i = 8, #ARGV, 2 do
  redis.call('HSET', chunks, ARGV[i], ARGV[i + 1])
  added[#added + 1] = tonumber(ARGV[i])
end
if #added > 0 then redis.call('EXPIRE', chunks, ttl) end
local done = redis.call('HLEN', chunks)
local started = redis.call('HGET', job, 'started_at')
if not started or started == '' then
  started = completed
  redis.call('HSET', job, 'started_at', started)
end
redis.call('HSET', job, 'status', final, 'result', result, 'detail', detail, 'completed_at', completed,
  'completed_chunks', done)
redis.call('ZREM', active, id)
redis.call('SREM', owner_active, id)
local owner, created = unpack(redis.call('HMGET', job, 'owner', 'created_at'))
if indexed(p, owner, id) then move_status(p, owner, id, status, final, created, ttl) end
redis.call('HINCRBY', owner_stats, final, 1)
redis.call('HINCRBY', job_stats, final, 1)
redis.call('HINCRBY', job_stats, 'finished:' .. (redis.call('HGET', job, 'kind') or 'unknown') .. ':' .. final, 1)
if final == 'completed' then
  redis.call('HINCRBY', owner_stats, 'duration_ms_sum',
    math.floor((tonumber(completed) - tonumber(started)) * 1000 + 0.5))
end
local message = {job_id=id, owner=owner, status=final, completed_chunks=done}
if #added > 0 then message.chunks = added end
redis.call('PUBLISH', channel, cjson.encode(message))
return 1
"""
