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

from compute.kinds import kind_names
from serve_app import __version__
from serve_app.context import AppContext
from serve_app.errors import install_error_handlers
from serve_app.middleware import RequestSizeLimitMiddleware, SecurityHeadersMiddleware
from serve_app.routes import auth, demo, jobs, kinds, me, monitoring, pages
from serve_app.settings import Settings, get_settings
from serve_app.status_reads import StatusFastPath, status_routes

log = logging.getLogger(__name__)

DESCRIPTION = """
Submit a computation, watch it split into chunks that run as Ray tasks across the cluster,
and read the exact result. Demo jobs need no account; `/jobs` needs a bearer token
(a JWT from `/auth/login` or an API token from `/me/tokens`).
"""


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ctx = AppContext.create(settings)
        app.state.ctx = ctx
        try:
            runner = await ctx.runner()
            await runner.recover.remote()
        except Exception as exc:  # Ray not reachable yet: health says so, submissions answer 503
            log.warning("job runner not reachable at startup: %s", type(exc).__name__)
        listener = asyncio.get_running_loop().create_task(ctx.events.run(ctx.store))
        yield
        listener.cancel()
        await ctx.close()

    app = FastAPI(
        title=settings.project_name,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    install_error_handlers(app)
    routers = [module.router for module in (demo, jobs, kinds, auth, me, monitoring, pages)]
    # the innermost middleware (added first): CORS, size limits and security headers apply to it too
    app.add_middleware(StatusFastPath, fastapi_app=app, routes=[r for router in routers for r in status_routes(router)])
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_credentials=True,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-CSRF-Token"],
        expose_headers=["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "Idempotent-Replayed"],
    )
    app.add_middleware(RequestSizeLimitMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_header_bytes=settings.max_header_bytes)
    app.add_middleware(SecurityHeadersMiddleware)

    for router in routers:
        app.include_router(router)
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
                    properties["kind"]["enum"] = kind_names()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
