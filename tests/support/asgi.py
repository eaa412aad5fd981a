"""The FastAPI app over httpx's ASGI transport on a real Redis, with no Ray: the fast tier's HTTP.

The lifespan (which reaches the runner actor) does not run; the context is built as it builds it,
except that the hand-off to the runner is a list, so a test can play the runner where it needs to.
"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx

from serve_app.app import create_app
from serve_app.context import AppContext
from serve_app.settings import Settings


class NoRunnerContext(AppContext):
    handed: list

    async def hand_off(self, job_id: str) -> None:
        self.handed.append(job_id)


def settings_for(redis_url: str, **env) -> Settings:
    env.setdefault("REDIS_KEY_PREFIX", f"asgi-{uuid.uuid4().hex[:8]}:")  # each test its own namespace
    return Settings(REDIS_URL=redis_url, JWT_SECRET="asgi-test-" + "s" * 40, ENVIRONMENT="test", **env)


@asynccontextmanager
async def app_client(redis_url: str, client_ip: str = "127.0.9.1", **env) -> AsyncIterator[
        tuple[httpx.AsyncClient, NoRunnerContext]]:
    """An HTTP client of a fresh app (one replica) and that app's context."""
    settings = settings_for(redis_url, **env)
    app = create_app(settings)
    ctx = NoRunnerContext.create(settings)
    ctx.handed = []
    app.state.ctx = ctx
    transport = httpx.ASGITransport(app=app, client=(client_ip, 5000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client, ctx
    finally:
        await ctx.close()
