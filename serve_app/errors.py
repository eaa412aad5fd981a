"""Every error leaves as JSON that names the problem; no traceback ever reaches a client."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.exceptions import RayError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from compute.kinds import kind_names, registry
from serve_app.rate_limits import RateLimitExceeded

log = logging.getLogger(__name__)

# Human wording for the fields that have documented ranges (filled in from settings per route).
FIELD_HINTS_KEY = "field_hints"


class FieldProblem(Exception):
    """A request field that parsed but is outside what the route allows."""

    def __init__(self, field: str, message: str, kind: str = "value_error"):
        self.field, self.message, self.kind = field, message, kind


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the documented API accepts on ``path`` (Starlette only names the first route's)."""
    table = getattr(app.state, "_path_methods", None)
    if table is None:  # most specific templates (fewest parameters) first, as the router prefers them
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
            table.append((template.count("{"), re.compile(f"^{pattern}$"), sorted(m.upper() for m in operations)))
        table.sort(key=lambda row: row[0])
        app.state._path_methods = table
    return next((methods for _, regex, methods in table if regex.match(path)), [])


BODY_SHAPE_TAGS = ("legacy", "kinded")  # schemas.job_body_type's tags, which pydantic puts in an error's loc


def _field_name(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    if parts and parts[0] in BODY_SHAPE_TAGS:
        shape, parts = parts[0], parts[1:]
        if shape == "kinded" and parts and parts[0] in registry():  # the kind's tag
            parts = parts[1:]
    return ".".join(parts) or "body"


def _union_tag_message(error: dict) -> str:
    tag = (error.get("ctx") or {}).get("tag")
    if error.get("type") == "union_tag_not_found":
        return "Field required (a job with `params` names its `kind`)."
    if tag in registry():  # a kind this route does not take: the demo route's closed kinds
        return f"{tag} is not open to demo jobs: sign in and use POST /jobs"
    return f"unknown kind {tag!r}; choose one of: {', '.join(kind_names())}"


def _validation_response(errors: list[dict]) -> JSONResponse:
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse(status_code=422, content={"detail": f"Invalid request: {summary}", "errors": errors})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        hints = getattr(request.state, FIELD_HINTS_KEY, {})
        errors = []
        for error in exc.errors():
            field = _field_name(error.get("loc", ()))
            message = str(error.get("msg", "invalid value"))
            if error.get("type") == "json_invalid":
                field, message = "body", "Request body is not valid JSON."
            elif error.get("type") == "model_attributes_type" or error.get("type") == "dict_type":
                message = "Request body must be a JSON object."
            elif error.get("type") == "extra_forbidden":
                message = "Unknown field."
            elif error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
                field, message = "kind", _union_tag_message(error)
            if field in hints:
                message = f"{message} ({hints[field]})"
            errors.append({"field": field, "message": message, "type": str(error.get("type", "value_error"))})
        return _validation_response(errors)

    @app.exception_handler(FieldProblem)
    async def on_field_problem(request: Request, exc: FieldProblem):
        return _validation_response([{"field": exc.field, "message": exc.message, "type": exc.kind}])

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and "parsing the body" in detail:  # e.g. a body that is not UTF-8
            return _validation_response([{"field": "body", "message": "Request body is not valid JSON.",
                                          "type": "json_invalid"}])
        if exc.status_code == 405:
            detail = f"Method {request.method} is not allowed on {request.url.path}."
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path)) or headers.get("Allow", "")
        return JSONResponse(status_code=exc.status_code, content={"detail": detail}, headers=headers)

    @app.exception_handler(RateLimitExceeded)
    async def on_rate_limited(request: Request, exc: RateLimitExceeded):
        request.app.state.ctx.metrics.count("rate_limited", limit=exc.name)
        return JSONResponse(
            status_code=429,
            content={"detail": f"Rate limit exceeded ({exc.limit}). Try again in {exc.retry_after} s.",
                     "retry_after": exc.retry_after},
            headers=exc.headers,
        )

    @app.exception_handler(RedisError)
    async def on_redis_down(request: Request, exc: RedisError):
        log.warning("redis unavailable: %s", type(exc).__name__)
        return JSONResponse(status_code=503, content={"detail": "Storage (Redis) is unavailable; try again shortly."},
                            headers={"Retry-After": "2"})

    @app.exception_handler(RayError)
    async def on_ray_error(request: Request, exc: RayError):
        log.warning("ray unavailable: %s", type(exc).__name__)
        return JSONResponse(status_code=503, content={"detail": "Compute cluster (Ray) is unavailable; try again shortly."},
                            headers={"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "Internal error."})
