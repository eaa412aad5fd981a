"""Job leases: exactly one runner runs a job at a time.

A runner takes a job's lease (a key holding its holder id, with an expiry) before running it, renews
the leases of its jobs while they run, and gives them back when they end. A second runner (a shard
after a resize, a restarted runner while its old self still holds the lease, or one started in the
wrong namespace against the same Redis) cannot take a lease that is held, and one that loses its
lease (it expired while the runner stalled) learns so at its next renewal and stops that job. A
holder id is new for every runner process, so a restarted runner waits for its old leases to
expire instead of taking them over.
"""

from __future__ import annotations

from typing import Iterable

from compute.storage.connection import RedisError, connect
from compute.storage.keys import RedisKeys

__all__ = ["JobLeases", "RedisError"]

# KEYS: pairs of (a job's lease, the job's record); ARGV[1] holder, ARGV[2] expiry (ms).
# Returns per job: 1 renewed (or taken again: it had expired and nobody took it, e.g. while this
# holder's process was starved of CPU); 0 lost: another holder has it, or the record is final or gone
# (cancelled through another runner: the holder stops its work).
RENEW = """
local answers = {}
for i = 1, #KEYS, 2 do
  local status = redis.call('HGET', KEYS[i + 1], 'status')
  local live = status == 'pending' or status == 'running'
  local holder = redis.call('GET', KEYS[i])
  if live and (holder == ARGV[1] or not holder) then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    answers[#answers + 1] = 1
  else
    answers[#answers + 1] = 0
  end
end
return answers
"""

# KEYS[1] the lease; ARGV[1] holder. Returns 1 when it was this holder's and is gone now.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class JobLeases:
    def __init__(self, redis_url: str, holder: str, seconds: float, *, key_prefix: str):
        self.redis = connect(redis_url)
        self.keys = RedisKeys(key_prefix)
        self.holder = holder
        self.ms = max(1, int(seconds * 1000))
        self._renew = self.redis.register_script(RENEW)
        self._release = self.redis.register_script(RELEASE)

    async def acquire(self, job_id: str) -> bool:
        """Take the job's lease if nobody holds it (or this holder already does)."""
        if await self.redis.set(self.keys.lease(job_id), self.holder, nx=True, px=self.ms):
            return True
        return not await self.renew([job_id])

    async def holder_of(self, job_id: str) -> str | None:
        return await self.redis.get(self.keys.lease(job_id))

    async def renew(self, job_ids: Iterable[str]) -> set[str]:
        """Extend these jobs' leases; returns the jobs this holder must stop: their lease is another's
        or gone, or their record is final (cancelled elsewhere) or gone."""
        job_ids = list(job_ids)
        if not job_ids:
            return set()
        keys = [key for job_id in job_ids for key in (self.keys.lease(job_id), self.keys.job(job_id))]
        answers = await self._renew(keys=keys, args=[self.holder, self.ms])
        return {job_id for job_id, kept in zip(job_ids, answers) if not kept}

    async def release(self, job_id: str) -> bool:
        return await self._release(keys=[self.keys.lease(job_id)], args=[self.holder]) == 1

    async def close(self) -> None:
        await self.redis.aclose()
