"""Accounts in Redis: users, email index, revoked access tokens, API tokens (no TTL unless noted).

Layout:
- ``user:{user_id}``             hash: user_id, email, password_hash, created_at (float epoch)
- ``user-email:{email}``         string -> user_id; the uniqueness guard for registration
                                 (emails are stored and looked up stripped and lower-cased)
- ``revoked-jti:{jti}``          string "1", expires shortly after the revoked token's ``exp``
- ``api-token:{token_hash}``     hash: token_id, user_id, name, created_at, last_used_at
                                 ("" until first use); ``token_hash`` is the sha256 hex of the secret
- ``user-api-tokens:{user_id}``  hash token_id -> token_hash, the index of a user's API tokens

User ids are uuid4 strings for local accounts and ``ext:<sub>`` for users of an external issuer
(who have no ``user:`` record but may own API tokens). The token index is not named
``user:{id}:api-tokens`` because an external ``sub`` may contain ``:`` and collide with it.

Multi-key changes run as Lua scripts (atomic): registration cannot create two users for one
email, deleting a user removes its email key and every API token in one step. The scripts touch
keys derived from stored values, so like ``JobStore`` this assumes a single Redis (not Cluster).
The client must be created with ``decode_responses=True`` (e.g. ``JobStore(...).redis``).
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Optional

import redis.asyncio as aioredis

__all__ = ["AccountStore", "normalize_email"]

EMAIL_PREFIX = "user-email:"
API_TOKEN_PREFIX = "api-token:"
# A revoked token stays listed this long past its exp (covers the 10 s decode leeway and clock skew).
REVOKE_GRACE_SECONDS = 60
# resolve_api_token writes last_used_at at most this often per token.
LAST_USED_INTERVAL_SECONDS = 10.0

# KEYS: email key, user key. ARGV: user_id, email, password_hash, created_at
_CREATE_USER = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('HSET', KEYS[2], 'user_id', ARGV[1], 'email', ARGV[2], 'password_hash', ARGV[3],
  'created_at', ARGV[4])
return 1
"""

# KEYS: user key. ARGV: new hash
_UPDATE_PASSWORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[1])
return 1
"""

# KEYS: user key, token index key. ARGV: user_id, email prefix, api-token prefix
_DELETE_USER = """
local email = redis.call('HGET', KEYS[1], 'email')
local removed = redis.call('DEL', KEYS[1])
if email then
  local email_key = ARGV[2] .. email
  if redis.call('GET', email_key) == ARGV[1] then redis.call('DEL', email_key) end
end
for _, token_hash in ipairs(redis.call('HVALS', KEYS[2])) do
  removed = removed + redis.call('DEL', ARGV[3] .. token_hash)
end
redis.call('DEL', KEYS[2])
return removed
"""

# KEYS: token index key. ARGV: token_id, api-token prefix
_DELETE_API_TOKEN = """
local token_hash = redis.call('HGET', KEYS[1], ARGV[1])
if not token_hash then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', ARGV[2] .. token_hash)
return 1
"""

# KEYS: api-token key. ARGV: now, interval
_RESOLVE_API_TOKEN = """
local v = redis.call('HMGET', KEYS[1], 'user_id', 'token_id', 'last_used_at')
if not v[1] or not v[2] then return false end
local last = tonumber(v[3])
if not last or tonumber(ARGV[1]) - last >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1])
end
return {v[1], v[2]}
"""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _user_key(user_id: str) -> str:
    return f"user:{user_id}"


def _email_key(email: str) -> str:
    return EMAIL_PREFIX + normalize_email(email)


def _revoked_key(jti: str) -> str:
    return f"revoked-jti:{jti}"


def _api_token_key(token_hash: str) -> str:
    return API_TOKEN_PREFIX + token_hash


def _user_tokens_key(user_id: str) -> str:
    return f"user-api-tokens:{user_id}"


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
    def __init__(self, redis: aioredis.Redis):
        self.redis = redis
        self._create_user = redis.register_script(_CREATE_USER)
        self._update_password = redis.register_script(_UPDATE_PASSWORD)
        self._delete_user = redis.register_script(_DELETE_USER)
        self._delete_api_token = redis.register_script(_DELETE_API_TOKEN)
        self._resolve_api_token = redis.register_script(_RESOLVE_API_TOKEN)

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
                keys=[_email_key(email), _user_key(user_id)],
                args=[user_id, email, password_hash, repr(created_at)],
            ))
            if created == 1:
                return {"user_id": user_id, "email": email, "password_hash": password_hash, "created_at": created_at}
            if created == 0:
                return None
            # -1: uuid4 collision with an existing record (practically impossible); draw again

    async def get_user(self, user_id: str) -> Optional[dict]:
        return _decode_user(await self.redis.hgetall(_user_key(user_id)))

    async def get_user_by_email(self, email: str) -> Optional[dict]:
        user_id = await self.redis.get(_email_key(email))
        return await self.get_user(user_id) if user_id else None

    async def update_password_hash(self, user_id: str, new_hash: str) -> bool:
        """Replace the stored hash; False (and nothing written) when the user does not exist."""
        return bool(await self._update_password(keys=[_user_key(user_id)], args=[new_hash]))

    async def delete_user(self, user_id: str) -> bool:
        """Remove the user record, its email key and all its API tokens; True if anything existed."""
        removed = await self._delete_user(
            keys=[_user_key(user_id), _user_tokens_key(user_id)],
            args=[user_id, EMAIL_PREFIX, API_TOKEN_PREFIX],
        )
        return int(removed) > 0

    # -- revoked access tokens ----------------------------------------------------------

    async def revoke_jti(self, jti: str, exp_epoch: float) -> None:
        """Deny the token ``jti`` until it would have expired anyway (plus a grace period)."""
        if not jti:
            raise ValueError("jti must not be empty")
        ttl = math.ceil(float(exp_epoch) - time.time()) + REVOKE_GRACE_SECONDS
        if ttl > 0:
            await self.redis.set(_revoked_key(jti), "1", ex=ttl)

    async def get_user_unless_revoked(self, user_id: str, jti: Optional[str]) -> Optional[dict]:
        """The user a token names, or None when the user is gone or the token was revoked
        (one round trip: this runs on every authenticated request)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(_revoked_key(jti or ""))
            pipe.hgetall(_user_key(user_id))
            revoked, user = await pipe.execute()
        return None if jti and revoked else _decode_user(user)

    async def is_jti_revoked(self, jti: str) -> bool:
        return bool(jti) and bool(await self.redis.exists(_revoked_key(jti)))

    # -- API tokens ---------------------------------------------------------------------

    async def create_api_token(self, user_id: str, name: str, token_hash: str) -> dict:
        token_id = uuid.uuid4().hex
        created_at = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(_api_token_key(token_hash), mapping={
                "token_id": token_id,
                "user_id": user_id,
                "name": name,
                "created_at": repr(created_at),
                "last_used_at": "",
            })
            pipe.hset(_user_tokens_key(user_id), token_id, token_hash)
            await pipe.execute()
        return {"id": token_id, "name": name, "created_at": created_at, "last_used_at": None}

    async def list_api_tokens(self, user_id: str) -> list[dict]:
        """The user's tokens, oldest first, without their hashes."""
        index = await self.redis.hgetall(_user_tokens_key(user_id))
        if not index:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for token_hash in index.values():
                pipe.hgetall(_api_token_key(token_hash))
            rows = await pipe.execute()
        tokens = [token for token in map(_decode_api_token, rows) if token is not None]
        tokens.sort(key=lambda t: (t["created_at"], t["id"]))
        return tokens

    async def delete_api_token(self, user_id: str, token_id: str) -> bool:
        """Delete one of the user's tokens; False when no such token belongs to this user."""
        deleted = await self._delete_api_token(
            keys=[_user_tokens_key(user_id)], args=[token_id, API_TOKEN_PREFIX]
        )
        return bool(deleted)

    async def resolve_api_token(self, token_hash: str) -> Optional[dict]:
        """``{"user_id", "token_id"}`` for a known token hash (and note its use), else ``None``."""
        result = await self._resolve_api_token(
            keys=[_api_token_key(token_hash)], args=[repr(time.time()), LAST_USED_INTERVAL_SECONDS]
        )
        if not result:
            return None
        user_id, token_id = result
        return {"user_id": user_id, "token_id": token_id}
