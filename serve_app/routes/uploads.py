"""Uploads: input files for the kinds that read one (``params.upload_id``), streamed to the artifact store."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from serve_app.context import AppContext
from serve_app.deps import ClientIP, Ctx, CurrentUser
from serve_app.responses import ERRORS
from serve_app.schemas import ErrorOut, UploadOut
from serve_app.uploads import FILE_FIELD, UploadProblem, boundary_of, receive_upload

router = APIRouter(prefix="/uploads", tags=["uploads"])
NOT_FOUND = "Upload not found."
UploadIdPath = Annotated[str, Path(description="The `upload_id` `POST /uploads` answered (any other string: 404).")]


MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": [FILE_FIELD],
            "properties": {FILE_FIELD: {"type": "string", "format": "binary",
                                        "description": "The file (at most MAX_UPLOAD_BYTES)."}},
        }}},
    },
}
UPLOAD_ERRORS = ERRORS(401, 413, 422, 429, 503) | {
    415: {"model": ErrorOut, "description": "The body is not multipart/form-data."}}


def _problem(exc: UploadProblem) -> JSONResponse:
    if exc.status == 422:  # the shape of every other 422 (ValidationErrorOut)
        error = {"field": exc.field, "message": exc.message, "type": "upload_invalid"}
        return JSONResponse({"detail": f"Invalid request: {exc.field}: {exc.message}", "errors": [error]},
                            status_code=422)
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


@router.post(
    "",
    status_code=201,
    response_model=UploadOut,
    summary="Upload an input file",
    description="A multipart/form-data body with one part named `file` (`curl -F file=@words.txt`), at most "
    "MAX_UPLOAD_BYTES (`GET /kinds` shows it under `limits.uploads`); larger bodies are refused with 413, "
    "before they are read when Content-Length says so. The file is streamed to the artifact store. Name its "
    "`upload_id` in a job's params; only you can use, read or delete it. Rate limit RATE_LIMIT_UPLOADS per client IP. A browser session needs `X-CSRF-Token`.",
    responses=UPLOAD_ERRORS,
    openapi_extra=MULTIPART_BODY,
)
async def create_upload(request: Request, user: CurrentUser, ctx: Ctx, ip: ClientIP, response: Response):
    try:
        boundary = boundary_of(request.headers.get("content-type"))
    except UploadProblem as exc:
        return _problem(exc)
    rate_headers = await ctx.limiter.hit("uploads", ctx.settings.rate_limit_uploads, ip)
    try:
        info = await receive_upload(request.stream(), _store(ctx), user.user_id, boundary,
                                    ctx.settings.max_upload_bytes)
    except UploadProblem as exc:
        answer = _problem(exc)
        answer.headers.update(rate_headers)
        return answer
    except ClientDisconnect:  # nobody is left to read an answer
        return Response(status_code=400)
    except OSError as exc:  # the store failed (disk full, object store down): the upload was deleted
        raise HTTPException(503, f"The artifact store could not take the upload ({type(exc).__name__}); "
                                 "try again shortly.", headers={"Retry-After": "5"}) from None
    response.headers.update(rate_headers)
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{info.upload_id}"
    return UploadOut.from_info(info)


@router.get("/{upload_id}", response_model=UploadOut, summary="Facts of one of your uploads",
            responses=ERRORS(401, 404, 503))
async def get_upload(upload_id: UploadIdPath, user: CurrentUser, ctx: Ctx) -> UploadOut:
    return UploadOut.from_info(await owned_upload(ctx, upload_id, user.user_id))


@router.delete("/{upload_id}", status_code=204, response_class=Response, summary="Delete one of your uploads",
               description="Jobs that still read it fail (their chunks cannot open it).",
               responses=ERRORS(401, 404, 503))
async def delete_upload(upload_id: UploadIdPath, user: CurrentUser, ctx: Ctx) -> Response:
    await owned_upload(ctx, upload_id, user.user_id)
    await asyncio.to_thread(_store(ctx).delete_upload, upload_id)
    return Response(status_code=204)


async def owned_upload(ctx: AppContext, upload_id: str, owner: str) -> UploadInfo:
    """The upload if it exists and belongs to ``owner``; otherwise 404 (ids stay private)."""
    info = await asyncio.to_thread(_store(ctx).upload_info, upload_id)
    if info is None or info.owner != owner:
        raise HTTPException(404, NOT_FOUND)
    return info


def _store(ctx: AppContext):
    if ctx.artifacts is None:
        raise HTTPException(503, "The artifact store is not configured.")
    return ctx.artifacts
