"""The fast path for the hottest request: a client polling its job's status.

Profiling the replica showed FastAPI's routing, dependency solving and response plumbing costing
more than the read itself (a leaner route class still went through FastAPI's router: half the
rate of this path, bench/README.md). So a status route says what it is with ``@status_read(owner)``,
the app factory collects those routes from the routers it includes (``status_routes``, any prefix),
and this middleware, the innermost one (CORS, size limits and security headers still apply),
serves them for job-id-shaped ids by calling what the route calls: the route's owner function and
``job_views.job_response``. Their errors are answered once, by the app's own exception handlers,
so every status and body is the route's.
"""

from __future__ import annotations

import re
from typing import Awaitable, Callable, NamedTuple

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from serve_app.context import AppContext
from serve_app.deps import JOB_ID_PATTERN
from serve_app.job_views import job_response

Owner = Callable[[Request, AppContext], Awaitable[str]]


class StatusRoute(NamedTuple):
    path: str
    regex: re.Pattern
    owner: Owner
    route: APIRoute  # the route it serves (``scope["route"]``, as the router would set it)


def status_read(owner: Owner):
    """Mark a ``GET .../{job_id}`` route as a status read of jobs owned by ``owner(request, ctx)``
    (which raises HTTPException as the route's own dependencies do)."""

    def mark(endpoint):
        endpoint.status_owner = owner
        return endpoint

    return mark


def status_routes(router: APIRouter, prefix: str = "") -> list[StatusRoute]:
    """The marked routes of ``router`` as the app serves them when it is included under ``prefix``."""
    found = []
    for route in router.routes:
        if isinstance(route, APIRoute) and "GET" in route.methods and hasattr(route.endpoint, "status_owner"):
            regex, _, _ = compile_path(prefix + route.path)
            found.append(StatusRoute(prefix + route.path, regex, route.endpoint.status_owner, route))
    return found


def _handler_for(app: FastAPI, exc: Exception):
    """The app's exception handler for ``exc``, looked up as Starlette does."""
    handlers = app.exception_handlers
    if isinstance(exc, StarletteHTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)


class StatusFastPath:
    def __init__(self, app, fastapi_app: FastAPI, routes: list[StatusRoute]):
        self.app = app
        self.fastapi_app = fastapi_app
        self.routes = routes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET":
            for route in self.routes:
                match = route.regex.match(scope["path"])
                # only job-id-shaped ids: any other segment is the router's (``/jobs/events``, or a 404)
                if match and JOB_ID_PATTERN.match(match["job_id"]):
                    scope["route"] = route.route
                    return await self._serve(scope, receive, send, match["job_id"], route.owner)
        await self.app(scope, receive, send)

    async def _serve(self, scope, receive, send, job_id: str, owner: Owner) -> None:
        request = Request(scope, receive)
        try:
            ctx = request.app.state.ctx
            response = await job_response(ctx, job_id, await owner(request, ctx))
        except Exception as exc:  # answered by the app's handler, as the route's error would be
            handler = _handler_for(self.fastapi_app, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)
