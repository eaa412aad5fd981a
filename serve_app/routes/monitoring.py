"""Health, readiness and service figures (public, read-only); liveness is ``/healthz`` (probes.py)."""

import asyncio
import time

import ray
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from compute.records import JobStatus
from serve_app import __version__
from serve_app.deps import Ctx
from serve_app.schemas import ClusterOut, HealthOut, NodeOut, ReadinessOut, SchedulerOut, ServiceStatsOut

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
HEALTH_TIMEOUT_SECONDS = 3
_cluster_cache: dict = {}


async def _check(probe) -> str:
    try:
        await asyncio.wait_for(probe, HEALTH_TIMEOUT_SECONDS)
        return "ok"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


async def _runner_answers(ctx) -> None:
    runners = await ctx.existing_runners()  # looks the shards up; only startup and submissions create them
    await asyncio.gather(*[runner.active_jobs.remote() for runner in runners])


@router.get("/health", response_model=HealthOut, summary="Health of the API, Redis and the job runner (Ray)",
            responses={503: {"model": HealthOut, "description": "Redis or Ray is unreachable."}})
async def health(ctx: Ctx):
    redis_state, ray_state = await asyncio.gather(_check(ctx.store.ping()), _check(_runner_answers(ctx)))
    healthy = redis_state == "ok" and ray_state == "ok"
    body = HealthOut(status="ok" if healthy else "degraded", redis=redis_state, ray=ray_state, version=__version__,
                     ray_dashboard_url=ctx.settings.ray_dashboard_url)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get("/ready", response_model=ReadinessOut, summary="Readiness: Redis, Ray and the job runner answer",
            description="200 when this replica can take jobs; 503 otherwise, with `checks` naming what does not "
            "answer (for load balancers and Kubernetes readiness probes).",
            responses={503: {"model": ReadinessOut, "description": "Something the service needs does not answer."}})
async def ready(ctx: Ctx):
    names = ("redis", "ray", "runner")
    probes = (ctx.store.ping(), asyncio.to_thread(ray.cluster_resources), _runner_answers(ctx))
    checks = dict(zip(names, await asyncio.gather(*map(_check, probes))))
    is_ready = all(state == "ok" for state in checks.values())
    body = ReadinessOut(status="ready" if is_ready else "not_ready", checks=checks, timestamp=time.time())
    return JSONResponse(body.model_dump(), status_code=200 if is_ready else 503)


@router.get("/stats", response_model=ServiceStatsOut, summary="Jobs by status, chunk rate, queued chunks, active users",
            responses={503: {"description": "Redis is unreachable."}})
async def get_service_stats(ctx: Ctx) -> ServiceStatsOut:
    stats = await ctx.store.service_stats()
    active = await ctx.store.get_jobs(await ctx.store.active_job_ids())
    counters = stats["counters"]
    by_status = {status.value: 0 for status in JobStatus}
    for record in active:
        by_status[record.status.value] += 1
    for status in ("completed", "failed", "cancelled"):
        by_status[status] = counters.get(status, 0)
    return ServiceStatsOut(
        timestamp=time.time(),
        jobs_total=counters.get("total_jobs", 0),
        jobs_by_status=by_status,
        chunks_per_second=round(stats["chunks_per_second"], 2),
        queued_chunks=sum(r.total_chunks - r.completed_chunks for r in active),
        active_users=len({r.owner for r in active}),
    )


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


async def _scheduler(ctx) -> SchedulerOut | None:
    """The scheduler's figures summed over the runner shards; None while one does not answer (the rest
    of the page still shows)."""
    try:
        runners = await ctx.existing_runners()
        shards = await asyncio.wait_for(asyncio.gather(*[r.queue_stats.remote() for r in runners]),
                                        HEALTH_TIMEOUT_SECONDS)
    except Exception:  # no runner yet, or one is restarting
        return None
    limits = [shard["max_inflight_chunks"] for shard in shards]
    return SchedulerOut(
        policy=shards[0]["policy"], shards=len(shards),
        max_inflight_chunks=None if None in limits else sum(limits),
        inflight_chunks=sum(shard["inflight_chunks"] for shard in shards),
        interactive_inflight=sum(shard["interactive_inflight"] for shard in shards),
        queued_chunks={p: sum(shard["queued_chunks"][p] for shard in shards) for p in shards[0]["queued_chunks"]},
    )


@router.get("/cluster", response_model=ClusterOut, summary="Nodes, CPUs in use and job figures",
            responses={503: {"description": "Redis or Ray is unreachable."}})
async def get_cluster(ctx: Ctx) -> ClusterOut:
    cached = _cluster_cache.get("value")
    if cached and time.monotonic() - _cluster_cache["at"] < 1.0:
        return cached
    snapshot, stats, scheduler = await asyncio.gather(asyncio.to_thread(_ray_snapshot), ctx.store.service_stats(),
                                                      _scheduler(ctx))
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
        scheduler=scheduler,
    )
    _cluster_cache.update(value=value, at=time.monotonic())
    return value
