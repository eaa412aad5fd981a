"""Probes at the root, where orchestrators and the template's clients look: ``/healthz`` (liveness)."""

from fastapi import APIRouter

from serve_app import __version__
from serve_app.deps import Ctx
from serve_app.schemas import LivenessOut

router = APIRouter(tags=["monitoring"])


@router.get("/healthz", response_model=LivenessOut, summary="Liveness: the API process is up",
            description="Always 200 while the process serves requests; it checks nothing else (readiness: "
            "`/monitoring/ready`).")
async def healthz(ctx: Ctx) -> LivenessOut:
    return LivenessOut(status="healthy", service=ctx.settings.project_name, version=__version__)
