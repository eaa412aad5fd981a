"""Health and cluster figures (public, read-only)."""

import asyncio
import time

import ray
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serve_app import __version__
from serve_app.deps import Ctx
from serve_app.schemas import ClusterOut, HealthOut, NodeOut

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
HEALTH_TIMEOUT_SECONDS = 3
_cluster_cache: dict = {}


async def _check(probe) -> str:
    try:
        await asyncio.wait_for(probe, HEALTH_TIMEOUT_SECONDS)
        return "ok"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


@router.get("/health", response_model=HealthOut, summary="Liveness of the API, Redis and Ray",
            responses={503: {"model": HealthOut, "description": "Redis or Ray is unreachable."}})
async def health(ctx: Ctx):
    async def ray_probe():  # looks the runner up; only startup and submissions create it
        runner = await ctx.existing_runner()
        await runner.active_jobs.remote()

    redis_state, ray_state = await asyncio.gather(_check(ctx.store.ping()), _check(ray_probe()))
    healthy = redis_state == "ok" and ray_state == "ok"
    body = HealthOut(status="ok" if healthy else "degraded", redis=redis_state, ray=ray_state, version=__version__,
                     ray_dashboard_url=ctx.settings.ray_dashboard_url)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


def _ray_snapshot() -> dict:
    nodes = ray.nodes()
    total = ray.cluster_resources().get("CPU", 0.0)
    available = ray.available_resources().get("CPU", 0.0)
    return {
        "nodes": [
            NodeOut(node_id=n["NodeID"], alive=n["Alive"], address=n.get("NodeManagerAddress", ""),
                    cpus=n.get("Resources", {}).get("CPU", 0.0))
            for n in nodes
        ],
        "cpus_total": total,
        "cpus_used": max(0.0, total - available),
    }


@router.get("/cluster", response_model=ClusterOut, summary="Nodes, CPUs in use and job figures",
            responses={503: {"description": "Redis or Ray is unreachable."}})
async def cluster(ctx: Ctx) -> ClusterOut:
    cached = _cluster_cache.get("value")
    if cached and time.monotonic() - _cluster_cache["at"] < 1.0:
        return cached
    snapshot, stats = await asyncio.gather(asyncio.to_thread(_ray_snapshot), ctx.store.service_stats())
    counters = stats["counters"]
    value = ClusterOut(
        nodes_alive=sum(1 for n in snapshot["nodes"] if n.alive),
        nodes=snapshot["nodes"],
        cpus_total=snapshot["cpus_total"],
        cpus_used=snapshot["cpus_used"],
        jobs_active=stats["active"],
        jobs_total=counters.get("total_jobs", 0),
        jobs_completed=counters.get("completed", 0),
        jobs_failed=counters.get("failed", 0),
        jobs_cancelled=counters.get("cancelled", 0),
        chunks_per_second=round(stats["chunks_per_second"], 2),
    )
    _cluster_cache.update(value=value, at=time.monotonic())
    return value
