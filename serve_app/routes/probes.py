"""At the root, where orchestrators, scrapers and the template's clients look: ``/healthz``
(liveness) and ``/metrics`` (Prometheus)."""

from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE  # what every Prometheus reads

from serve_app import __version__
from serve_app.deps import Ctx
from serve_app.http_metrics import render
from serve_app.schemas import LivenessOut

router = APIRouter(tags=["monitoring"])


@router.get("/healthz", response_model=LivenessOut, summary="Liveness: the API process is up",
            description="Always 200 while the process serves requests; it checks nothing else (readiness: "
            "`/monitoring/ready`).")
async def healthz(ctx: Ctx) -> LivenessOut:
    return LivenessOut(status="healthy", service=ctx.settings.project_name, version=__version__)


@router.get("/metrics", summary="Prometheus metrics of the whole service",
            description="The text exposition format, the same through any replica: HTTP requests by route "
            "template, method and status, a latency histogram per route, rate-limit rejections, idempotent "
            "replays, jobs submitted and finished by kind and status, jobs active now.",
            responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."},
                       503: {"description": "Redis is unreachable."}})
async def metrics(ctx: Ctx) -> Response:
    await ctx.metrics.flush()  # this replica's latest counts too
    http, stats = await ctx.metrics.counters.read(), await ctx.store.service_stats()
    return Response(render(http, stats["counters"], stats["active"]), media_type=CONTENT_TYPE)
