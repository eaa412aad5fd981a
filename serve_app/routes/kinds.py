"""What a job may be: the registered job kinds and the server's limits (public, read-only).

The web UI takes every limit it shows or checks from here; the settings stay their only source.
"""

from fastapi import APIRouter, Response

from compute.kinds import registry
from serve_app.deps import Ctx
from serve_app.schemas import DemoLimitsOut, JobLimitsOut, KindOut, KindsOut, LimitsOut, RateLimitOut

router = APIRouter(tags=["kinds"])


@router.get("/kinds", response_model=KindsOut, summary="Job kinds and the limits on jobs",
            description="The kinds a job's `kind` may name (sorted by name) and the limits the server "
            "enforces on `POST /jobs` and `POST /jobs/demo`, from its settings.")
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
        ),
    )
