"""AccountStore and its scripts against the session's real redis-server, each test in a namespace
of its own (no pytest-asyncio: an event loop per test)."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis

from compute.storage import accounts
from compute.storage.accounts import AccountStore
from tests.support.clients import run_async
from tests.support.storage import unique_prefix


def run(redis_url: str, scenario):
    """Run ``await scenario(store, client)`` on a fresh event loop with its own client."""

    async def main():
        client = aioredis.from_url(redis_url, decode_responses=True)
        try:
            return await scenario(AccountStore(client, key_prefix=unique_prefix()), client)
        finally:
            await client.aclose()

    return run_async(main)


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex}@example.com"


def test_create_and_get_user(redis_url):
    email = unique_email()

    async def scenario(store, client):
        before = time.time()
        user = await store.create_user(email, "hash-1")
        assert user is not None
        assert uuid.UUID(user["user_id"]).version == 4
        assert user["email"] == email and user["password_hash"] == "hash-1"
        assert isinstance(user["created_at"], float) and before <= user["created_at"] <= time.time()

        assert await store.get_user(user["user_id"]) == user
        assert await store.get_user_by_email(email) == user
        assert await client.get(store.keys.user_email(email)) == user["user_id"]
        assert await store.get_user(str(uuid.uuid4())) is None
        assert await store.get_user_by_email(unique_email()) is None

    run(redis_url, scenario)


def test_duplicate_email_returns_none(redis_url):
    email = unique_email()

    async def scenario(store, client):
        first = await store.create_user(email, "h1")
        assert first is not None
        assert await store.create_user(email, "h2") is None
        assert await store.create_user("  " + email.upper() + " ", "h3") is None  # normalised
        assert await store.get_user_by_email(email.upper()) == first
        assert (await store.get_user(first["user_id"]))["password_hash"] == "h1"

    run(redis_url, scenario)


def test_concurrent_registrations_create_one_user(redis_url):
    email = unique_email()

    async def scenario(store, client):
        results = await asyncio.gather(*(store.create_user(email, f"h{i}") for i in range(10)))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        winner = winners[0]
        assert await store.get_user_by_email(email) == winner
        # no half-created records for the losers
        user_keys = [k async for k in client.scan_iter(match=store.keys.user("*"))]
        assert user_keys == [store.keys.user(winner["user_id"])]

    run(redis_url, scenario)


def test_revoke_jti_with_ttl(redis_url):
    async def scenario(store, client):
        user = await store.create_user(unique_email(), "h")
        uid = user["user_id"]

        async def revoked(jti: str) -> bool:
            return await store.get_user_unless_revoked(uid, jti) is None

        jti = uuid.uuid4().hex
        assert not await revoked(jti)
        await store.revoke_jti(jti, time.time() + 300)
        assert await revoked(jti)
        ttl = await client.ttl(store.keys.revoked_jti(jti))
        assert 300 < ttl <= 300 + 61  # until exp plus the grace period
        # a token long expired is not worth remembering
        old = uuid.uuid4().hex
        await store.revoke_jti(old, time.time() - 3600)
        assert not await revoked(old) and not await client.exists(store.keys.revoked_jti(old))
        # a token that just expired is still remembered through the decode leeway
        recent = uuid.uuid4().hex
        await store.revoke_jti(recent, int(time.time()) - 5)
        assert await revoked(recent)
        assert 0 < await client.ttl(store.keys.revoked_jti(recent)) <= 60

    run(redis_url, scenario)


def test_api_token_lifecycle(redis_url):
    async def scenario(store, client):
        user = await store.create_user(unique_email(), "h")
        uid = user["user_id"]
        hash_a, hash_b = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
        a = await store.create_api_token(uid, "ci", hash_a)
        b = await store.create_api_token(uid, "laptop", hash_b)
        assert set(a) == {"id", "name", "created_at", "last_used_at"}
        assert a["name"] == "ci" and a["last_used_at"] is None and isinstance(a["created_at"], float)
        assert len(a["id"]) == 32 and a["id"] != b["id"]

        listed = await store.list_api_tokens(uid)
        assert listed == [a, b]  # oldest first
        assert all(hash_a not in str(t) and hash_b not in str(t) for t in listed)  # never the hash
        assert await store.list_api_tokens(str(uuid.uuid4())) == []

        resolved = await store.resolve_api_token(hash_a)
        assert resolved == {"user_id": uid, "token_id": a["id"]}
        assert await store.resolve_api_token("0" * 64) is None

        used = (await store.list_api_tokens(uid))[0]["last_used_at"]
        assert isinstance(used, float) and used >= a["created_at"]
        # a second use within the interval does not write again
        await store.resolve_api_token(hash_a)
        assert (await store.list_api_tokens(uid))[0]["last_used_at"] == used
        # after the interval it does
        await client.hset(store.keys.api_token(hash_a), "last_used_at", repr(used - 60))
        await store.resolve_api_token(hash_a)
        assert (await store.list_api_tokens(uid))[0]["last_used_at"] > used - 60

        assert await store.delete_api_token(uid, a["id"]) is True
        assert await store.delete_api_token(uid, a["id"]) is False
        assert await store.resolve_api_token(hash_a) is None
        assert [t["id"] for t in await store.list_api_tokens(uid)] == [b["id"]]

    run(redis_url, scenario)


def test_delete_other_users_token_is_refused(redis_url):
    async def scenario(store, client):
        alice = await store.create_user(unique_email(), "h")
        bob = await store.create_user(unique_email(), "h")
        token_hash = uuid.uuid4().hex * 2
        token = await store.create_api_token(alice["user_id"], "alice's", token_hash)
        assert await store.delete_api_token(bob["user_id"], token["id"]) is False
        assert await store.resolve_api_token(token_hash) == {"user_id": alice["user_id"], "token_id": token["id"]}
        assert len(await store.list_api_tokens(alice["user_id"])) == 1

    run(redis_url, scenario)


def test_delete_user_removes_email_and_tokens(redis_url):
    email = unique_email()

    async def scenario(store, client):
        user = await store.create_user(email, "h")
        uid = user["user_id"]
        hashes = [uuid.uuid4().hex * 2 for _ in range(3)]
        for i, token_hash in enumerate(hashes):
            await store.create_api_token(uid, f"t{i}", token_hash)
        survivor = await store.create_user(unique_email(), "h")
        survivor_hash = uuid.uuid4().hex * 2
        await store.create_api_token(survivor["user_id"], "keep", survivor_hash)

        assert await store.delete_user(uid) is True
        assert await store.get_user(uid) is None
        assert await store.get_user_by_email(email) is None
        assert await store.list_api_tokens(uid) == []
        for token_hash in hashes:
            assert await store.resolve_api_token(token_hash) is None
            assert not await client.exists(store.keys.api_token(token_hash))
        assert not await client.exists(store.keys.user_email(email), store.keys.user(uid),
                                       store.keys.user_api_tokens(uid))
        assert await store.delete_user(uid) is False

        # other users are untouched, and the email can be registered again
        assert (await store.resolve_api_token(survivor_hash))["user_id"] == survivor["user_id"]
        again = await store.create_user(email, "h2")
        assert again is not None and again["user_id"] != uid

    run(redis_url, scenario)


def test_external_user_tokens_without_user_record(redis_url):
    async def scenario(store, client):
        uid = f"ext:idp|{uuid.uuid4().hex}"
        token_hash = uuid.uuid4().hex * 2
        token = await store.create_api_token(uid, "script", token_hash)
        assert await store.resolve_api_token(token_hash) == {"user_id": uid, "token_id": token["id"]}
        assert await store.get_user(uid) is None
        # the owner revokes one token: it stops resolving at once, the other keeps working
        other_hash = uuid.uuid4().hex * 2
        other = await store.create_api_token(uid, "laptop", other_hash)
        assert await store.delete_api_token(uid, other["id"]) is True
        assert await store.resolve_api_token(other_hash) is None
        assert [t["id"] for t in await store.list_api_tokens(uid)] == [token["id"]]
        assert await store.delete_user(uid) is True  # tokens removed
        assert await store.resolve_api_token(token_hash) is None

    run(redis_url, scenario)


def test_get_user_unless_revoked_in_one_round_trip(redis_url):
    async def scenario(store, client):
        user = await store.create_user(f"u-{uuid.uuid4().hex[:8]}@example.com", "hash")
        jti = uuid.uuid4().hex
        assert (await store.get_user_unless_revoked(user["user_id"], jti))["user_id"] == user["user_id"]
        assert (await store.get_user_unless_revoked(user["user_id"], None))["user_id"] == user["user_id"]
        await store.revoke_jti(jti, time.time() + 300)
        assert await store.get_user_unless_revoked(user["user_id"], jti) is None
        assert await store.get_user_unless_revoked(uuid.uuid4().hex, uuid.uuid4().hex) is None

    run(redis_url, scenario)


# -- the scripts, called directly with the KEYS/ARGV their headers document -------------------


def test_create_user_script_guards_the_email_and_the_id(redis_url):
    async def scenario(store, client):
        k, script = store.keys, client.register_script(accounts.CREATE_USER)
        email, uid, other = unique_email(), str(uuid.uuid4()), str(uuid.uuid4())
        assert await script(keys=[k.user_email(email), k.user(uid)], args=[uid, email, "h", "1.5"]) == 1
        assert await client.hgetall(k.user(uid)) == {"user_id": uid, "email": email, "password_hash": "h",
                                                     "created_at": "1.5"}
        # the email is taken: 0, and no record for the other id
        assert await script(keys=[k.user_email(email), k.user(other)], args=[other, email, "h2", "2"]) == 0
        assert not await client.exists(k.user(other))
        # the id is taken (a uuid4 collision): -1, and the new email is not claimed
        fresh = unique_email()
        assert await script(keys=[k.user_email(fresh), k.user(uid)], args=[uid, fresh, "h3", "3"]) == -1
        assert not await client.exists(k.user_email(fresh))
        assert await client.hget(k.user(uid), "password_hash") == "h"

    run(redis_url, scenario)


def test_delete_user_script_removes_the_email_key_and_tokens(redis_url):
    async def scenario(store, client):
        k, script = store.keys, client.register_script(accounts.DELETE_USER)
        user = await store.create_user(unique_email(), "h")
        uid = user["user_id"]
        hashes = [uuid.uuid4().hex * 2 for _ in range(2)]
        for token_hash in hashes:
            await store.create_api_token(uid, "t", token_hash)
        assert await script(keys=[k.user(uid), k.user_api_tokens(uid)], args=[k.prefix, uid]) == 3
        assert not await client.exists(k.user(uid), k.user_email(user["email"]), k.user_api_tokens(uid),
                                       *map(k.api_token, hashes))
        assert await script(keys=[k.user(uid), k.user_api_tokens(uid)], args=[k.prefix, uid]) == 0
        # an email key naming another user (re-registered meanwhile) is left alone
        again = await store.create_user(unique_email(), "h")
        await client.set(k.user_email(again["email"]), "someone-else")
        await script(keys=[k.user(again["user_id"]), k.user_api_tokens(again["user_id"])],
                     args=[k.prefix, again["user_id"]])
        assert await client.get(k.user_email(again["email"])) == "someone-else"

    run(redis_url, scenario)


def test_delete_api_token_script_deletes_only_the_users_own(redis_url):
    async def scenario(store, client):
        k, script = store.keys, client.register_script(accounts.DELETE_API_TOKEN)
        token_hash = uuid.uuid4().hex * 2
        token = await store.create_api_token("alice", "t", token_hash)

        async def delete_as(user_id: str) -> int:
            return await script(keys=[k.user_api_tokens(user_id)], args=[k.prefix, token["id"]])

        assert await delete_as("bob") == 0
        assert await client.exists(k.api_token(token_hash))
        assert await delete_as("alice") == 1
        assert not await client.exists(k.api_token(token_hash))
        assert await client.hgetall(k.user_api_tokens("alice")) == {}
        assert await delete_as("alice") == 0

    run(redis_url, scenario)


def test_resolve_api_token_script_throttles_last_used(redis_url):
    async def scenario(store, client):
        k, script = store.keys, client.register_script(accounts.RESOLVE_API_TOKEN)
        token_hash = uuid.uuid4().hex * 2
        token = await store.create_api_token("carol", "t", token_hash)

        async def resolve(now: float):
            return await script(keys=[k.api_token(token_hash)], args=[repr(now), 10])

        async def last_used() -> str:
            return await client.hget(k.api_token(token_hash), "last_used_at")

        assert await resolve(1000.0) == ["carol", token["id"]]
        assert await last_used() == "1000.0"  # first use: written
        await resolve(1009.5)
        assert await last_used() == "1000.0"  # within the interval: not written
        await resolve(1010.0)
        assert await last_used() == "1010.0"  # at the interval: written
        assert await script(keys=[k.api_token("0" * 64)], args=["1", 10]) is None
        assert not await client.exists(k.api_token("0" * 64))

    run(redis_url, scenario)
