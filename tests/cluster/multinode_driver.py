"""Driver for tests/cluster/test_multinode.py, run in its own process (a process joins one Ray cluster).

Starts a private redis-server and a real three-node Ray cluster on this machine (a 0-CPU head and two
1-CPU workers, each its own raylet), then runs jobs through the real JobRunner:

1. ``spread``: a sleepy_sum job whose chunks must land on both worker nodes; then ``special``, a
   special_sum job (its chunks ask for the custom resource ``special``) whose chunks must all run on
   the one worker node that offers it;
2. ``node_loss``: a job during which the worker node that is running one of its chunks is removed
   (all its processes killed); the chunk must be re-run on the other node and the result stay exact.

Prints one JSON object on stdout (everything else goes to stderr). Its environment must isolate it:
RAY_TMPDIR (a private temp dir, so Ray's "current cluster" file of other users is left alone) is set
by the test.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.cluster_driver import driver_session  # noqa: E402  (after the path is set)

NAMESPACE = "ray-jobs-multinode"


def log(message: str) -> None:
    print(f"[multinode {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def chunk_workers(node, job_id: str) -> dict[int, int]:
    """Chunk index -> pid of the workers of ``node`` that are running a chunk of ``job_id`` right now
    (Ray titles a worker process after its task's name, ``ray::chunk:<job>:<index>``)."""
    import psutil
    from ray._private import ray_constants

    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    running = {}
    try:
        children = psutil.Process(raylet).children()
    except psutil.Error:
        return running
    for proc in children:
        try:
            title = (proc.cmdline() or [""])[0]
        except psutil.Error:
            continue
        prefix = f"ray::chunk:{job_id}:"
        if title.startswith(prefix):
            running[int(title[len(prefix):].split()[0])] = proc.pid
    return running


def pin_service_actors_to_head(head_node_id: str) -> None:
    """Create the runner on the head node, as a production head would host it, so
    removing a worker node takes chunks away but never the runner (get_runner() then finds it)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from compute.runner import RUNNER_NAME, JobRunner

    on_head = NodeAffinitySchedulingStrategy(head_node_id, soft=False)
    runner = JobRunner.options(name=RUNNER_NAME, namespace=NAMESPACE, lifetime="detached",
                               scheduling_strategy=on_head).remote()
    ray.get(runner.active_jobs.remote())


async def run_job(store, kind: str, n: int, chunks: int, during=None, timeout: float = 120) -> dict:
    """Create, submit and wait for one job; ``during(job_id)`` is awaited while it runs."""
    from compute.config import JobLimits
    from compute.runner import get_runner
    from compute.submission import JobRequest, prepare

    job = prepare("multinode", JobRequest(kind, {"n": n}, chunks), JobLimits(10**12, 10**6))
    record = job.record
    await store.create_job(record, inputs=job.inputs)
    await get_runner().submit.remote(record.job_id)
    extra = await during(record.job_id) if during else {}
    deadline = time.monotonic() + timeout
    while True:
        job = await store.get_job(record.job_id)
        if job.status.terminal:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {record.job_id} not finished after {timeout} s: {job}")
        await asyncio.sleep(0.1)
    facts = await store.get_chunk_facts(record.job_id)
    return {
        "job_id": record.job_id,
        "status": job.status.value,
        "detail": job.detail,
        "result": job.result,
        "expected": n * (n + 1) // 2,
        "seconds": round(job.completed_at - job.created_at, 3),
        "chunks": [
            {"index": f.index, "node_id": f.node_id, "pid": f.worker_pid, "started_at": f.started_at,
             "ended_at": f.ended_at}
            for f in sorted(facts.values(), key=lambda f: f.index)
        ],
        **extra,
    }


def main() -> int:
    with driver_session(NAMESPACE) as (redis, output, cleanup):
        run(redis, output, cleanup)
    return 0


def run(redis, output: dict, cleanup) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from compute.config import get_compute_settings
    from compute.storage.jobs import JobStore

    started = time.monotonic()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            # A removed node is declared dead after ~1.5 s instead of ~15 s.
            "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                               "health_check_failure_threshold": 3},
        },
    )
    cleanup.callback(cluster.shutdown)
    # the second worker alone offers the custom resource `special` (the special_sum kind asks for it)
    workers = [cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1, resources={"special": 1})]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace=NAMESPACE, logging_level="WARNING", log_to_driver=False)
    output["startup_seconds"] = round(time.monotonic() - started, 1)
    output["worker_node_ids"] = [w.node_id for w in workers]
    output["special_node_id"] = workers[1].node_id
    output["head_node_id"] = cluster.head_node.node_id
    log(f"cluster up in {output['startup_seconds']} s: head + {len(workers)} workers")
    pin_service_actors_to_head(cluster.head_node.node_id)

    async def scenario() -> None:
        store = JobStore(redis.url, key_prefix=get_compute_settings().redis_key_prefix)
        try:
            # 1. chunks spread over both worker nodes (the head offers no CPU)
            t0 = time.monotonic()
            output["spread"] = await run_job(store, "sleepy_sum", 4000, 8)
            output["spread"]["wall_seconds"] = round(time.monotonic() - t0, 1)
            log(f"spread job done in {output['spread']['wall_seconds']} s")

            # 1b. a kind asking for a custom resource: only the node that has it runs its chunks
            output["special"] = await run_job(store, "special_sum", 4000, 6)
            log("special-resource job done")

            # 2. a worker node removed while it runs a chunk of the job
            async def remove_busy_node(job_id: str) -> dict:
                deadline = time.monotonic() + 60
                while True:
                    busy = {i: node for node in list(cluster.worker_nodes)
                            for i in chunk_workers(node, job_id)}
                    if busy:
                        break
                    assert time.monotonic() < deadline, "no chunk started on a worker node"
                    await asyncio.sleep(0.05)
                index, victim = sorted(busy.items())[0]
                killed = sorted(chunk_workers(victim, job_id))
                removed_at = time.time()
                await asyncio.to_thread(cluster.remove_node, victim, False)
                log(f"removed node {victim.node_id[:8]} while it ran chunk(s) {killed}")
                return {"removed_node_id": victim.node_id, "removed_at": removed_at, "killed_chunks": killed,
                        "done_when_removed": (await store.get_job(job_id)).completed_chunks}

            t0 = time.monotonic()
            output["node_loss"] = await run_job(store, "sleepy_sum", 6000, 4, during=remove_busy_node)
            output["node_loss"]["wall_seconds"] = round(time.monotonic() - t0, 1)
            log(f"node-loss job done in {output['node_loss']['wall_seconds']} s")
            output["alive_nodes_after"] = sum(1 for n in ray.nodes() if n["Alive"])
        finally:
            await store.close()

    asyncio.run(scenario())


if __name__ == "__main__":
    sys.exit(main())
