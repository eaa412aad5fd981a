"""Accounts in Redis: users, the email index, revoked access tokens, API tokens.

The key names are in ``keys.py`` (``user``, ``user_email``, ``revoked_jti``, ``api_token``,
``user_api_tokens``). A user record holds user_id, email, password_hash and created_at (float epoch);
emails are stored and looked up stripped and lower-cased; an API token is stored under the sha256
hex of its secret with token_id, user_id, name, created_at and last_used_at ("" until first use).
User ids are uuid4 strings for local accounts and ``ext:<sub>`` for users of an external issuer
(who have no user record but may own API tokens).

Multi-key changes run as Lua scripts (atomic): registration cannot create two users for one
email, deleting a user removes its email key and every API token in one step. The scripts touch
keys derived from stored values (``keys.LUA_KEY_FUNCTIONS``, from the prefix passed as an ARGV), so
like ``JobStore`` this assumes a single Redis (not Cluster). The client must answer ``str``
(``connection.connect``, e.g. ``JobStore(...).redis``).
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Optional

import redis.asyncio as aioredis

from compute.storage.keys import LUA_KEY_FUNCTIONS, RedisKeys

__all__ = ["AccountStore", "normalize_email"]

# A revoked token stays listed this long past its exp (covers the 10 s decode leeway and clock skew).
REVOKE_GRACE_SECONDS = 60
# resolve_api_token writes last_used_at at most this often per token.
LAST_USED_INTERVAL_SECONDS = 10.0

# Each script opens with its contract (KEYS, ARGV, what it returns).
CREATE_USER = """
-- Create a user unless the email (or, practically never, the fresh user id) is taken.
-- KEYS[1] email_key  P user-email:{email}
-- KEYS[2] user       P user:{id}
-- ARGV[1] user id; ARGV[2] email (normalised); ARGV[3] password hash; ARGV[4] created_at (epoch s)
-- Returns 1: created; 0: the email is taken; -1: the user id is taken (draw another). 0 and -1
-- write nothing.
local email_key, user = unpack(KEYS)
local id, email, password_hash, created = unpack(ARGV)
if redis.call('EXISTS', user) == 1 then return -1 end
if not redis.call('SET', email_key, id, 'NX') then return 0 end
redis.call('HSET', user, 'user_id', id, 'email', email, 'password_hash', password_hash, 'created_at', created)
return 1
"""

DELETE_USER = LUA_KEY_FUNCTIONS + """
-- Delete a user, its email key (if it still names this user) and every API token it owns.
-- KEYS[1] user    P user:{id}
-- KEYS[2] tokens  P user-api-tokens:{id}
-- ARGV[1] prefix P; ARGV[2] user id
-- Returns how many of the user record and its tokens existed (0: nothing to delete).
local user, tokens = unpack(KEYS)
local p, id = unpack(ARGV)
local email = redis.call('HGET', user, 'email')
local removed = redis.call('DEL', user)
if email and redis.call('GET', email_key(p, email)) == id then redis.call('DEL', email_key(p, email)) end
for _, token_hash in ipairs(redis.call('HVALS', tokens)) do
  removed = removed + redis.call('DEL', api_token_key(p, token_hash))
end
redis.call('DEL', tokens)
return removed
"""

DELETE_API_TOKEN = LUA_KEY_FUNCTIONS + """
-- Delete one API token of one user.
-- KEYS[1] tokens  P user-api-tokens:{user id}
-- ARGV[1] prefix P; ARGV[2] token id
-- Returns 1: deleted; 0: this user has no such token, nothing written.
local tokens = KEYS[1]
local p, token_id = unpack(ARGV)
local token_hash = redis.call('HGET', tokens, token_id)
if not token_hash then return 0 end
redis.call('HDEL', tokens, token_id)
redis.call('DEL', api_token_key(p, token_hash))
return 1
"""

RESOLVE_API_TOKEN = """
-- Who an API token belongs to, noting its use at most once per interval.
-- KEYS[1] token  P api-token:{sha256 hex}
-- ARGV[1] now (epoch s); ARGV[2] interval (s) between last_used_at writes
-- Returns {user id, token id}, or nil for an unknown token.
local token = KEYS[1]
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', token, 'user_id', 'token_id', 'last_used_at')
if not v[1] or not v[2] then return false end
local last = tonumber(v[3])
if not last or now - last >= interval then redis.call('HSET', token, 'last_used_at', ARGV[1]) end
return {v[1], v[2]}
"""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _float_or_none(value: Optional[str]) -> Optional[float]:
    return float(value) if value else None


def _decode_user(raw: dict) -> Optional[dict]:
    if not raw or not raw.get("user_id"):
        return None
    return {
        "user_id": raw["user_id"],
        "email": raw.get("email", ""),
        "password_hash": raw.get("password_hash", ""),
        "created_at": float(raw.get("created_at") or 0.0),
    }


def _decode_api_token(raw: dict) -> Optional[dict]:
    if not raw or not raw.get("token_id"):
        return None
    return {
        "id": raw["token_id"],
        "name": raw.get("name", ""),
        "created_at": float(raw.get("created_at") or 0.0),
        "last_used_at": _float_or_none(raw.get("last_used_at")),
    }


class AccountStore:
    """Accounts of the service whose keys start with ``key_prefix`` (``REDIS_KEY_PREFIX``)."""

    def __init__(self, redis: aioredis.Redis, *, key_prefix: str):
        self.redis = redis
        self.keys = RedisKeys(key_prefix)
        self._create_user = redis.register_script(CREATE_USER)
        self._delete_user = redis.register_script(DELETE_USER)
        self._delete_api_token = redis.register_script(DELETE_API_TOKEN)
        self._resolve_api_token = redis.register_script(RESOLVE_API_TOKEN)

    # -- users --------------------------------------------------------------------------

    async def create_user(self, email: str, password_hash: str) -> Optional[dict]:
        """Create a local user with a fresh uuid4 id; ``None`` when the email is already taken."""
        email = normalize_email(email)
        if not email:
            raise ValueError("email must not be empty")
        while True:
            user_id = str(uuid.uuid4())
            created_at = time.time()
            created = int(await self._create_user(
                keys=[self.keys.user_email(email), self.keys.user(user_id)],
                args=[user_id, email, password_hash, repr(created_at)],
            ))
            if created == 1:
                return {"user_id": user_id, "email": email, "password_hash": password_hash, "created_at": created_at}
            if created == 0:
                return None
            # -1: uuid4 collision with an existing record (practically impossible); draw again

    async def get_user(self, user_id: str) -> Optional[dict]:
        return _decode_user(await self.redis.hgetall(self.keys.user(user_id)))

    async def get_user_by_email(self, email: str) -> Optional[dict]:
        user_id = await self.redis.get(self.keys.user_email(normalize_email(email)))
        return await self.get_user(user_id) if user_id else None

    async def delete_user(self, user_id: str) -> bool:
        """Remove the user record, its email key and all its API tokens; True if anything existed."""
        removed = await self._delete_user(
            keys=[self.keys.user(user_id), self.keys.user_api_tokens(user_id)],
            args=[self.keys.prefix, user_id],
        )
        return int(removed) > 0

    # -- revoked access tokens ----------------------------------------------------------

    async def revoke_jti(self, jti: str, exp_epoch: float) -> None:
        """Deny the token ``jti`` until it would have expired anyway (plus a grace period)."""
        if not jti:
            raise ValueError("jti must not be empty")
        ttl = math.ceil(float(exp_epoch) - time.time()) + REVOKE_GRACE_SECONDS
        if ttl > 0:
            await self.redis.set(self.keys.revoked_jti(jti), "1", ex=ttl)

    async def get_user_unless_revoked(self, user_id: str, jti: Optional[str]) -> Optional[dict]:
        """The user a token names, or None when the user is gone or the token was revoked
        (one round trip: this runs on every authenticated request)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.revoked_jti(jti or ""))
            pipe.hgetall(self.keys.user(user_id))
            revoked, user = await pipe.execute()
        return None if jti and revoked else _decode_user(user)

    # -- API tokens ---------------------------------------------------------------------

    async def create_api_token(self, user_id: str, name: str, token_hash: str) -> dict:
        token_id = uuid.uuid4().hex
        created_at = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.api_token(token_hash), mapping={
                "token_id": token_id,
                "user_id": user_id,
                "name": name,
                "created_at": repr(created_at),
                "last_used_at": "",
            })
            pipe.hset(self.keys.user_api_tokens(user_id), token_id, token_hash)
            await pipe.execute()
        return {"id": token_id, "name": name, "created_at": created_at, "last_used_at": None}

    async def list_api_tokens(self, user_id: str) -> list[dict]:
        """The user's tokens, oldest first, without their hashes."""
        index = await self.redis.hgetall(self.keys.user_api_tokens(user_id))
        if not index:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for token_hash in index.values():
                pipe.hgetall(self.keys.api_token(token_hash))
            rows = await pipe.execute()
        tokens = [token for token in map(_decode_api_token, rows) if token is not None]
        tokens.sort(key=lambda t: (t["created_at"], t["id"]))
        return tokens

    async def delete_api_token(self, user_id: str, token_id: str) -> bool:
        """Delete one of the user's tokens; False when no such token belongs to this user."""
        deleted = await self._delete_api_token(
            keys=[self.keys.user_api_tokens(user_id)], args=[self.keys.prefix, token_id]
        )
        return bool(deleted)

    async def resolve_api_token(self, token_hash: str) -> Optional[dict]:
        """``{"user_id", "token_id"}`` for a known token hash (and note its use), else ``None``."""
        result = await self._resolve_api_token(
            keys=[self.keys.api_token(token_hash)], args=[repr(time.time()), LAST_USED_INTERVAL_SECONDS]
        )
        if not result:
            return None
        user_id, token_id = result
        return {"user_id": user_id, "token_id": token_id}
