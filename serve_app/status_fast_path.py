"""The fast path for the hottest request: a client polling its job's status.

Pollers read ``GET /jobs/demo/{id}`` and ``GET /jobs/{id}`` many times per job, and profiling the
replica showed FastAPI's routing, dependency solving and response plumbing costing more than the
read itself. This middleware, the innermost one (so CORS, size limits and security headers still
apply), answers exactly the successful reads, with the body the routes produce
(``job_views.job_body``). Everything else (unknown or malformed ids, other owners, missing or bad
credentials, Redis errors, other methods and paths) goes on to the FastAPI routes, so every error
keeps its single implementation there.
"""

from __future__ import annotations

import logging
import re

from fastapi import Request

from serve_app.auth import authenticate
from serve_app.deps import JOB_ID_PATTERN
from serve_app.job_views import job_body
from serve_app.routes.demo import DEMO_OWNER

STATUS_PATH = re.compile(r"^/jobs/(demo/)?([^/]+)$")
log = logging.getLogger(__name__)


class StatusFastPath:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET":
            match = STATUS_PATH.match(scope["path"])
            if match and JOB_ID_PATTERN.match(match[2]):
                body = await self._read(scope, demo=bool(match[1]), job_id=match[2])
                if body is not None:
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _read(scope, *, demo: bool, job_id: str) -> bytes | None:
        request = Request(scope)
        ctx = request.app.state.ctx
        try:
            if demo:
                owner = DEMO_OWNER
            else:
                user = await authenticate(request, ctx)
                if user is None:
                    return None
                owner = user.user_id
            return await job_body(ctx, job_id, owner)
        except Exception as exc:  # noqa: BLE001 - the route answers it (e.g. 503 when Redis is away)
            log.debug("status fast path fell back to the route: %s", type(exc).__name__)
            return None
