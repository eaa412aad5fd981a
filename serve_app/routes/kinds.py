"""What a job may be: the registered job kinds and the server's limits (public, read-only).

The web UI takes every limit it shows or checks from here; the settings stay their only source.
"""

from fastapi import APIRouter, Response

from compute.kinds import registry
from serve_app.deps import Ctx
from serve_app.schemas import (
    DemoLimitsOut,
    JobLimitsOut,
    KindOut,
    KindsOut,
    LimitsOut,
    RateLimitOut,
    UploadLimitsOut,
)

router = APIRouter(tags=["kinds"])


@router.get("/kinds", response_model=KindsOut, summary="Job kinds and the limits on jobs",
            description="The kinds a job's `kind` may name (sorted by name), each with its params' JSON "
            "schema, resources and retry policy, and the limits the server enforces on `POST /jobs`, "
            "`POST /jobs/demo` and `POST /uploads`, from its settings.")
async def list_kinds(ctx: Ctx, response: Response) -> KindsOut:
    settings = ctx.settings
    response.headers["Cache-Control"] = "no-cache"  # a config read: revalidated on use, so new settings show at once
    return KindsOut(
        kinds=[KindOut.from_kind(kind) for kind in sorted(registry().values(), key=lambda kind: kind.name)],
        limits=LimitsOut(
            jobs=JobLimitsOut(max_n=settings.max_n, max_chunks=settings.max_chunks,
                              max_active_jobs=settings.max_active_jobs_per_user, rate_limit=settings.rate_limit_jobs),
            demo=DemoLimitsOut(max_n=settings.demo_max_n, max_chunks=settings.demo_max_chunks,
                               rate_limit=settings.rate_limit_demo),
            login=RateLimitOut(rate_limit=settings.rate_limit_login),
            uploads=UploadLimitsOut(max_bytes=settings.max_upload_bytes, rate_limit=settings.rate_limit_uploads),
            max_result_bytes=settings.max_result_bytes,
            max_artifact_bytes_per_job=settings.max_artifact_bytes_per_job,
        ),
    )
