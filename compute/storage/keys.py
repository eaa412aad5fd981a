"""Every Redis key and pub/sub channel name of the service, under one settable prefix.

Why one place: a service that shares its Redis with others needs its own namespace, and a reader
asking "who writes this key?" finds every name here (arq keeps ``job_key_prefix`` and its siblings
in one module, rq builds ``Job.key_for(id)``). No other module spells a key: the stores ask
``RedisKeys``, and the Lua scripts build the few keys they derive from stored values with
``LUA_KEY_FUNCTIONS`` below, the same shapes, from the prefix they are passed.

Layout, ``P`` = ``REDIS_KEY_PREFIX`` (default ``rayjobs:``; empty = the unprefixed keys of earlier
versions). Job keys expire after ``JOB_TTL_SECONDS``, account keys do not, unless noted.

==========================================  ===================================================
``P job:{id}``                              hash: the job record
``P job:{id}:chunks``                       hash: chunk index -> JSON ChunkFact
``P job:{id}:inputs``                       string: the chunks' inputs, a JSON list
``P job:{id}:progress``                     hash: running chunk index -> progress fraction
``P job-events:{id}``                       pub/sub channel: the job's change events
``P jobs:active``                           sorted set: pending/running ids, all owners (no TTL)
``P owner:{o}:jobs``                        sorted set: an owner's job ids by creation time
``P owner:{o}:active``                      set: an owner's pending/running ids (no TTL)
``P owner:{o}:status:{status}``             sorted set: an owner's job ids in one status
``P owner:{o}:stats``                       hash: an owner's counters (no TTL)
``P stats:jobs``                            hash: service-wide counters (no TTL)
``P stats:chunks-per-second:{epoch s}``     string: chunks finished in that second (120 s)
``P idem:{scope}:{key}``                    string: the first response for an idempotency key
``P user:{id}``                             hash: a local account
``P user-email:{email}``                    string: user id; the registration uniqueness guard
``P user-api-tokens:{id}``                  hash: token id -> token hash, a user's API tokens
``P api-token:{sha256 hex}``                hash: one API token (the secret itself is never stored)
``P revoked-jti:{jti}``                     string: a revoked access token (until its expiry)
``P LIMITS:...``                            the ``limits`` library's rate-limit counters
==========================================  ===================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Union

__all__ = ["LUA_KEY_FUNCTIONS", "RedisKeys"]

# The keys scripts derive from stored values (an owner read from a record, the ids in a set), in the
# same shapes as RedisKeys below; ``p`` is the prefix, which every such script takes as an ARGV.
# tests/compute/storage/test_keys.py runs these in Redis and compares them with the methods below.
LUA_KEY_FUNCTIONS = """
local function job_key(p, id) return p .. 'job:' .. id end
local function owner_key(p, owner, suffix) return p .. 'owner:' .. owner .. ':' .. suffix end
local function email_key(p, email) return p .. 'user-email:' .. email end
local function api_token_key(p, token_hash) return p .. 'api-token:' .. token_hash end
"""

_GLOB_SPECIAL = "\\*?[]"


@dataclass(frozen=True)
class RedisKeys:
    """The names of one service's keys; ``prefix`` is ``REDIS_KEY_PREFIX``."""

    prefix: str

    # -- jobs -----------------------------------------------------------------------------

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def chunks(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:chunks"

    def inputs(self, job_id: str) -> str:
        """The job's chunk inputs (a JSON list, written with the record)."""
        return f"{self.prefix}job:{job_id}:inputs"

    def chunk_progress(self, job_id: str) -> str:
        """Hash of running chunks' progress (index -> fraction), reported from inside the chunks."""
        return f"{self.prefix}job:{job_id}:progress"

    def lease(self, job_id: str) -> str:
        """Which runner runs the job now (``leases.py``): its holder id, with an expiry."""
        return f"{self.prefix}job:{job_id}:lease"

    def events(self, job_id: str) -> str:
        return f"{self.prefix}job-events:{job_id}"

    def events_pattern(self) -> str:
        """The pattern matching every job's channel of this service, and no other service's."""
        escaped = "".join("\\" + c if c in _GLOB_SPECIAL else c for c in self.prefix)
        return f"{escaped}job-events:*"

    def job_id_of_channel(self, channel: str) -> str:
        return channel.removeprefix(self.events(""))

    @property
    def active_jobs(self) -> str:
        return f"{self.prefix}jobs:active"

    @property
    def job_stats(self) -> str:
        return f"{self.prefix}stats:jobs"

    def result_cache(self, owner: str, digest: str) -> str:
        """The id of the owner's completed job for one kind, n and chunks (``digest``), while cached."""
        return f"{self.prefix}result-cache:{owner}:{digest}"

    @property
    def http_counters(self) -> str:
        """Hash of the HTTP edge's counters, summed over every replica (``GET /metrics``)."""
        return f"{self.prefix}stats:http"

    def chunk_rate(self, epoch_second: int) -> str:
        return f"{self.prefix}stats:chunks-per-second:{epoch_second}"

    # -- an owner's indexes -----------------------------------------------------------------

    def owner_jobs(self, owner: str) -> str:
        return f"{self.prefix}owner:{owner}:jobs"

    def owner_active(self, owner: str) -> str:
        return f"{self.prefix}owner:{owner}:active"

    def owner_status(self, owner: str, status: Union[str, Enum]) -> str:
        return f"{self.prefix}owner:{owner}:status:{getattr(status, 'value', status)}"

    def owner_stats(self, owner: str) -> str:
        return f"{self.prefix}owner:{owner}:stats"

    # -- request guards ---------------------------------------------------------------------

    def idempotency(self, scope: str, key: str) -> str:
        return f"{self.prefix}idem:{scope}:{key}"

    @property
    def rate_limits(self) -> str:
        """The ``key_prefix`` of the ``limits`` storage (it adds ``:`` and its own key); with an
        empty prefix it is that library's default, ``LIMITS``."""
        return f"{self.prefix}LIMITS"

    # -- accounts ---------------------------------------------------------------------------

    def user(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}"

    def user_email(self, normalized_email: str) -> str:
        return f"{self.prefix}user-email:{normalized_email}"

    def user_api_tokens(self, user_id: str) -> str:
        # not ``user:{id}:api-tokens``: an external ``sub`` may contain ``:`` and collide with it
        return f"{self.prefix}user-api-tokens:{user_id}"

    def api_token(self, token_hash: str) -> str:
        return f"{self.prefix}api-token:{token_hash}"

    def revoked_jti(self, jti: str) -> str:
        return f"{self.prefix}revoked-jti:{jti}"
