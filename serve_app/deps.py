"""Shared FastAPI dependencies, as typed aliases so a route's signature says what it needs.

Every dependency is ``async def``, even when it never awaits: FastAPI runs a plain ``def``
dependency in its thread pool, a cost on every request (bench/README.md).
"""

from __future__ import annotations

import re
from typing import Annotated, Optional

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials

from compute.config import JobLimits
from serve_app.auth import AuthUser, authenticate, bearer_scheme
from serve_app.client_ip import client_ip
from serve_app.context import AppContext
from serve_app.errors import FIELD_HINTS_KEY

JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


async def get_context(request: Request) -> AppContext:
    return request.app.state.ctx


Ctx = Annotated[AppContext, Depends(get_context)]


async def get_client_ip(request: Request, ctx: Ctx) -> str:
    return client_ip(request, ctx.settings.trusted_proxy_networks)


ClientIP = Annotated[str, Depends(get_client_ip)]


def _limits_dependency(section: str):
    """A dependency giving a route's job limits (``settings.<section>``); it also lets 422 messages
    name the allowed ranges."""

    async def limits(request: Request, ctx: Ctx) -> JobLimits:
        found = getattr(ctx.settings, section)
        setattr(request.state, FIELD_HINTS_KEY, found.hints())
        return found

    return Annotated[JobLimits, Depends(limits)]


UserJobLimits = _limits_dependency("job_limits")
DemoJobLimits = _limits_dependency("demo_limits")


async def valid_job_id(job_id: str) -> str:
    if not JOB_ID_PATTERN.match(job_id):
        raise HTTPException(404, "Job not found.")
    return job_id


JobId = Annotated[str, Depends(valid_job_id)]


IdempotencyKey = Annotated[Optional[str], Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Replays the first response for the same key and body for 24 h (1-255 visible ASCII).")]


UNAUTHORIZED = HTTPException(401, "Not authenticated.", headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    request: Request, ctx: Ctx,
    credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer_scheme)] = None,
) -> AuthUser:
    user = await authenticate(request, ctx, credentials)
    if user is None:
        raise UNAUTHORIZED
    return user


CurrentUser = Annotated[AuthUser, Depends(current_user)]


async def signed_in_owner(request: Request, ctx: AppContext) -> str:
    """The owner whose jobs a signed-in caller may read (``current_user`` outside FastAPI's solver)."""
    return (await current_user(request, ctx, await bearer_scheme(request))).user_id
