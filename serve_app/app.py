"""The FastAPI app factory: plain FastAPI, testable without Serve; Serve wraps it in deployment.py."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError

from compute.kinds import get_kind, kind_names
from serve_app import __version__
from serve_app.context import AppContext
from serve_app.errors import install_error_handlers
from serve_app.http_metrics import MetricsMiddleware
from serve_app.middleware import RequestSizeLimitMiddleware, SecurityHeadersMiddleware
from serve_app.routes import artifacts, auth, demo, jobs, kinds, me, monitoring, pages, probes, uploads, ws
from serve_app.schemas import job_model_name, legacy_kind_names
from serve_app.settings import Settings, get_settings
from serve_app.status_reads import StatusFastPath, status_routes

log = logging.getLogger(__name__)
API_VERSION_PREFIX = "/v1"
API_PREFIXES = (API_VERSION_PREFIX, "")

DESCRIPTION = """
Submit a computation, watch it split into chunks that run as Ray tasks across the cluster,
and read the exact result. Demo jobs need no account; `/v1/jobs` needs a bearer token
(a JWT from `/v1/auth/login` or an API token from `/v1/me/tokens`).

Every path below also answers without its `/v1` prefix (`/jobs`, `/me`, ...): the short form is an
alias of the same route, kept for the paths in the README.

Live progress over WebSocket (not listed below: OpenAPI describes no WebSockets): `/v1/ws/{job_id}?token=...`
(a JWT or an API token) and `/v1/ws/demo/{job_id}` send `connected`, `progress` per change, then `done`
and close with 1000; refusals close with 1008 and a reason (see the README).
"""


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ctx = AppContext.create(settings)
        app.state.ctx = ctx
        try:
            await asyncio.gather(*[runner.recover.remote() for runner in await ctx.all_runners()])
        except Exception as exc:  # Ray not reachable yet: health says so, submissions answer 503
            log.warning("job runner not reachable at startup: %s", type(exc).__name__)
        loop = asyncio.get_running_loop()
        background = [loop.create_task(ctx.events.run(ctx.store)), loop.create_task(ctx.metrics.run())]
        yield
        for task in background:
            task.cancel()
        try:
            await ctx.metrics.flush()  # this replica's last counts
        except RedisError as exc:
            log.warning("last metrics flush failed: %s", type(exc).__name__)
        await ctx.close()

    app = FastAPI(
        title=settings.project_name,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        # operation ids are the endpoints' names (create_job, get_job, ...): generated clients read well
        generate_unique_id_function=lambda route: route.name,
    )
    install_error_handlers(app)
    api_routers = [module.router for module in (demo, jobs, artifacts, uploads, kinds, auth, me, monitoring, ws)]
    # the innermost middleware (added first): CORS, size limits and security headers apply to it too
    app.add_middleware(StatusFastPath, fastapi_app=app, routes=[
        route for prefix in API_PREFIXES for router in api_routers for route in status_routes(router, prefix)])
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_credentials=True,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-CSRF-Token"],
        expose_headers=["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "Idempotent-Replayed"],
    )
    app.add_middleware(RequestSizeLimitMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_header_bytes=settings.max_header_bytes, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware)  # outermost: times the whole request

    # Every API route answers under /v1 (documented) and without it (the README's paths: an alias).
    for prefix in API_PREFIXES:
        for router in api_routers:
            app.include_router(router, prefix=prefix, include_in_schema=prefix == API_VERSION_PREFIX)
    app.include_router(probes.router)
    app.include_router(pages.router)
    static_dir = pages.FRONTEND_DIR / "static"
    if static_dir.is_dir():
        app.mount("/static", RevalidatedStaticFiles(directory=static_dir), name="static")

    @app.exception_handler(404)
    async def not_found(request: Request, exc):
        wants_html = "text/html" in request.headers.get("accept", "")
        page = pages.page_file("404.html")
        if wants_html and request.method == "GET" and page.is_file():
            return FileResponse(page, status_code=404, media_type="text/html")
        detail = getattr(exc, "detail", None)
        if not isinstance(detail, str) or detail == "Not Found":
            detail = f"No route for {request.method} {request.url.path}."
        return JSONResponse({"detail": detail}, status_code=404, headers=getattr(exc, "headers", None))

    install_openapi_limits(app, settings)
    return app


class RevalidatedStaticFiles(StaticFiles):
    """Static assets that browsers revalidate (ETag) on every use, so a deploy is seen at once."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _document_our_validation_errors(schema: dict) -> None:
    """Every 422 is ValidationErrorOut (errors.py), not FastAPI's default list-shaped detail."""
    ours = {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorOut"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is not None:
                response["content"] = ours
    models = schema.get("components", {}).get("schemas", {})
    models.pop("HTTPValidationError", None)
    models.pop("ValidationError", None)


def install_openapi_limits(app: FastAPI, settings: Settings) -> None:
    """Show the configured maxima and the registered job kinds in the OpenAPI schema."""
    bounds = {"JobCreate": settings.job_limits, "DemoJobCreate": settings.demo_limits}

    def openapi():
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            models = schema.get("components", {}).get("schemas", {})
            _document_our_validation_errors(schema)
            for name, limits in bounds.items():
                if name in models:
                    properties = models[name]["properties"]
                    properties["n"]["maximum"] = limits.max_n
                    properties["chunks"]["maximum"] = limits.max_chunks
                    properties["kind"]["enum"] = legacy_kind_names(demo=limits.demo)
            for name in kind_names():  # the kinded bodies: chunks and (range kinds) n
                kind = get_kind(name)
                for prefix, limits in (("", settings.job_limits), ("Demo", settings.demo_limits)):
                    model = models.get(job_model_name(kind, prefix))
                    if model is None:
                        continue
                    model["properties"]["chunks"]["maximum"] = min(limits.max_chunks, kind.max_chunks or limits.max_chunks)
                    ref = model["properties"]["params"].get("$ref", "")
                    params = models.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
                    if "n" in params:
                        params["n"]["maximum"] = min(params["n"].get("maximum", limits.max_n), limits.max_n)
                    for field, maximum in (kind.demo_max.items() if limits.demo else ()):
                        params[field]["maximum"] = maximum
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
