"""Distinct HTTP clients for tests: each connects from its own loopback address, so the service
sees separate TCP peers (and rate-limit buckets), as it would see separate machines."""

from __future__ import annotations

import itertools

import httpx

_ips = itertools.count(1)


def fresh_ip() -> str:
    """A new loopback address, never 127.0.0.1 (the test session's trusted proxy address)."""
    n = next(_ips)
    return f"127.{1 + (n >> 16) % 254}.{(n >> 8) & 255}.{n & 255}"


def client_from(base_url: str, ip: str | None = None, **kwargs) -> httpx.Client:
    """An httpx client whose connections come from ``ip`` (a fresh loopback address by default)."""
    kwargs.setdefault("timeout", 30)
    return httpx.Client(base_url=base_url, transport=httpx.HTTPTransport(local_address=ip or fresh_ip()),
                        **kwargs)


def run_async(make_coroutine):
    """``asyncio.run(make_coroutine())`` on a thread of its own: Playwright's sync API leaves an event
    loop marked running in the main thread once the browser tests have run."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()
