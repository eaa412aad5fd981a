"""Jobs' artifacts (their file outputs): list them and download one, for the job's owner (demo twins too)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, BinaryIO

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import StreamingResponse

from compute.artifacts import ArtifactError, ArtifactInfo, ArtifactStore
from serve_app.context import AppContext
from serve_app.deps import Ctx, CurrentUser, JobId
from serve_app.job_views import load_owned
from serve_app.responses import ERRORS
from serve_app.routes.demo import DEMO_OWNER
from serve_app.schemas import ArtifactOut, ArtifactsOut

router = APIRouter(prefix="/jobs", tags=["artifacts"])
NOT_FOUND = "Artifact not found."
READ_BLOCK = 256 * 1024
# Shown in the browser; anything else downloads (an HTML or SVG artifact never runs on our origin).
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "application/json"})
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
                         r"(;\s*[A-Za-z0-9_.-]+=[A-Za-z0-9_.\"-]+)*$")
ArtifactName = Annotated[str, Path(description="The artifact's name, as listed (`/`-separated segments).")]
BINARY = {200: {"description": "The artifact's bytes, with its content type, `Content-Length` and `ETag` "
                               "(its sha256).",
               "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
          304: {"description": "Not modified (`If-None-Match` names its ETag)."}}


@router.get("/{job_id}/artifacts", response_model=ArtifactsOut, summary="Artifacts of one of your jobs",
            description="The files the job wrote (name, size, content type, sha256, download path); a "
            "running job's list grows as its chunks finish.", responses=ERRORS(401, 404, 503))
async def list_job_artifacts(job_id: JobId, user: CurrentUser, ctx: Ctx, request: Request) -> ArtifactsOut:
    await load_owned(ctx, job_id, user.user_id)
    return await artifact_list(ctx, job_id, request.url.path)


@router.get("/{job_id}/artifacts/{name:path}", response_class=Response, summary="Download an artifact of one of your jobs",
            description="Streams the file. PNG, JPEG and JSON are sent `inline` (a browser shows them), any "
            "other type as an `attachment`. `If-None-Match` with its ETag answers 304.",
            responses=ERRORS(401, 404, 503) | BINARY)
async def get_job_artifact(job_id: JobId, name: ArtifactName, user: CurrentUser, ctx: Ctx,
                           request: Request) -> Response:
    await load_owned(ctx, job_id, user.user_id)
    return await artifact_download(ctx, job_id, name, request)


@router.get("/demo/{job_id}/artifacts", response_model=ArtifactsOut, summary="Artifacts of a demo job",
            responses=ERRORS(404, 503))
async def list_demo_job_artifacts(job_id: JobId, ctx: Ctx, request: Request) -> ArtifactsOut:
    await load_owned(ctx, job_id, DEMO_OWNER)
    return await artifact_list(ctx, job_id, request.url.path)


@router.get("/demo/{job_id}/artifacts/{name:path}", response_class=Response, summary="Download an artifact of a demo job",
            description="As `GET /jobs/{job_id}/artifacts/{name}`.", responses=ERRORS(404, 503) | BINARY)
async def get_demo_job_artifact(job_id: JobId, name: ArtifactName, ctx: Ctx, request: Request) -> Response:
    await load_owned(ctx, job_id, DEMO_OWNER)
    return await artifact_download(ctx, job_id, name, request)


# -- shared by the routes ---------------------------------------------------------------------

def _store(ctx: AppContext) -> ArtifactStore:
    if ctx.artifacts is None:
        raise HTTPException(503, "The artifact store is not configured.")
    return ctx.artifacts


async def artifact_list(ctx: AppContext, job_id: str, list_path: str) -> ArtifactsOut:
    infos = await asyncio.to_thread(_store(ctx).list_artifacts, job_id)
    base = list_path.rstrip("/")
    return ArtifactsOut(job_id=job_id, artifacts=[
        ArtifactOut(name=i.name, size=i.size, content_type=i.content_type, sha256=i.sha256, url=f"{base}/{i.name}")
        for i in infos])


def _info(store: ArtifactStore, job_id: str, name: str) -> ArtifactInfo | None:
    try:
        return store.artifact_info(job_id, name)
    except ArtifactError:  # not a valid name (traversal, hidden segment...): no such artifact
        return None


def _open(store: ArtifactStore, job_id: str, name: str) -> BinaryIO | None:
    try:
        return store.open_artifact(job_id, name)
    except (FileNotFoundError, ArtifactError):  # deleted since its facts were read
        return None


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weak comparison, as RFC 9110 asks for it)."""
    if not header:
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def _disposition(name: str, media_type: str) -> str:
    kind = "inline" if media_type.split(";", 1)[0].strip().lower() in INLINE_TYPES else "attachment"
    return f'{kind}; filename="{name.rsplit("/", 1)[-1]}"'  # names are [A-Za-z0-9._-]: nothing to escape


async def artifact_download(ctx: AppContext, job_id: str, name: str, request: Request) -> Response:
    store = _store(ctx)
    info = await asyncio.to_thread(_info, store, job_id, name)
    if info is None:
        raise HTTPException(404, NOT_FOUND)
    etag = f'"{info.sha256}"'
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "private, no-cache"})
    media_type = info.content_type if _MEDIA_TYPE.match(info.content_type or "") else DEFAULT_CONTENT_TYPE
    opened = await asyncio.to_thread(_open, store, job_id, name)
    if opened is None:
        raise HTTPException(404, NOT_FOUND)
    headers = {"Content-Length": str(info.size), "ETag": etag, "Cache-Control": "private, no-cache",
               "Content-Disposition": _disposition(info.name, media_type)}
    return StreamingResponse(_blocks(opened), media_type=media_type, headers=headers)


async def _blocks(opened: BinaryIO):
    try:
        while block := await asyncio.to_thread(opened.read, READ_BLOCK):
            yield block
    finally:
        opened.close()
