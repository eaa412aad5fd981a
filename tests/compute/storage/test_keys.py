"""The key namespace (compute/storage/keys.py): the Lua spelling of keys agrees with the Python one,
an empty prefix is the layout of earlier versions, and the event pattern is the namespace's own."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from compute.config import ComputeSettings
from compute.storage.keys import LUA_KEY_FUNCTIONS, RedisKeys
from tests.support.clients import run_async
from tests.support.storage import unique_prefix

ODD_PREFIXES = ("", "rayjobs:", "a*b?[c]\\:")  # the last one is full of glob characters


def test_scripts_build_the_same_key_names_as_python(redis_url):
    """Scripts derive some keys from stored values (keys.LUA_KEY_FUNCTIONS): a different spelling
    there would make them read and write keys nothing else knows."""
    script = LUA_KEY_FUNCTIONS + """
local p = ARGV[1]
return {job_key(p, 'j1'), owner_key(p, 'o:1', 'status:running'), email_key(p, 'a@b.c'),
        api_token_key(p, 'ff00')}
"""

    async def scenario():
        client = aioredis.from_url(redis_url, decode_responses=True)
        try:
            for prefix in ODD_PREFIXES:
                keys = RedisKeys(prefix)
                assert await client.eval(script, 0, prefix) == [
                    keys.job("j1"), keys.owner_status("o:1", "running"), keys.user_email("a@b.c"),
                    keys.api_token("ff00")]
        finally:
            await client.aclose()

    run_async(scenario)


def test_an_empty_prefix_is_the_layout_of_earlier_versions():
    """README: REDIS_KEY_PREFIX= (empty) keeps reading keys an earlier version wrote."""
    keys = RedisKeys("")
    assert [keys.job("J"), keys.chunks("J"), keys.events("J"), keys.active_jobs, keys.job_stats,
            keys.chunk_rate(7), keys.owner_jobs("O"), keys.owner_active("O"), keys.owner_status("O", "failed"),
            keys.owner_stats("O"), keys.idempotency("user:U", "K"), keys.user("U"), keys.user_email("e@x"),
            keys.user_api_tokens("U"), keys.api_token("H"), keys.revoked_jti("T"), keys.rate_limits] == [
        "job:J", "job:J:chunks", "job-events:J", "jobs:active", "stats:jobs",
        "stats:chunks-per-second:7", "owner:O:jobs", "owner:O:active", "owner:O:status:failed",
        "owner:O:stats", "idem:user:U:K", "user:U", "user-email:e@x",
        "user-api-tokens:U", "api-token:H", "revoked-jti:T", "LIMITS"]  # LIMITS: the limits library's default
    assert RedisKeys("rayjobs:").job("J") == "rayjobs:job:J"


def test_the_prefix_setting(monkeypatch):
    monkeypatch.delenv("REDIS_KEY_PREFIX", raising=False)
    assert ComputeSettings().redis_key_prefix == "rayjobs:"
    monkeypatch.setenv("REDIS_KEY_PREFIX", "")
    assert ComputeSettings().redis_key_prefix == ""  # empty stays empty: the earlier layout
    monkeypatch.setenv("REDIS_KEY_PREFIX", "tenant-a:")
    assert ComputeSettings().redis_key_prefix == "tenant-a:"


def test_the_event_pattern_matches_only_its_own_namespace(redis_url):
    """Glob characters in a prefix are escaped: ``a*:`` must not follow ``abc:``'s jobs."""

    async def scenario():
        client = aioredis.from_url(redis_url, decode_responses=True)
        base = unique_prefix()
        mine = RedisKeys(base + "a*[b]?\\:")
        # the first would match if the glob characters were not escaped; the others are neighbours
        others = [RedisKeys(base + "aXbY:"), RedisKeys(base + "a*[b]?\\:x:"), RedisKeys(base)]
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(mine.events_pattern())
            for keys in others:
                await client.publish(keys.events("theirs"), "{}")
            await client.publish(mine.events("ours"), "{}")
            async with asyncio.timeout(10):
                message = None
                while message is None:
                    message = await pubsub.get_message(timeout=5)
            assert mine.job_id_of_channel(message["channel"]) == "ours"
        finally:
            await pubsub.aclose()
            await client.aclose()

    run_async(scenario)
