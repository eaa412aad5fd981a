"""Driver for tests/cluster/test_autoscaling.py, run in its own process against the fake autoscaling head.

Connects to the head at RAY_ADDRESS (0 CPUs: nothing can run there), runs one sleepy_sum job through the
real JobRunner and records a timeline (seconds since the job was submitted, worker nodes alive, event)
until the autoscaler has added workers, the job has finished and the idle workers are gone again.
Prints one JSON object as its last line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def log(message: str) -> None:
    print(f"[autoscaling {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def worker_nodes() -> list[str]:
    """Alive nodes that offer CPUs (the head offers none)."""
    import ray

    return sorted(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0)


async def scenario(args) -> dict:
    import ray

    from compute.config import JobLimits, get_compute_settings
    from compute.runner import get_runner
    from compute.storage.jobs import JobStore
    from compute.submission import JobRequest, prepare

    store = JobStore(os.environ["REDIS_URL"], key_prefix=get_compute_settings().redis_key_prefix)
    timeline: list[tuple[float, int, str]] = []
    t0 = time.monotonic()
    seen_nodes: set[str] = set()
    last_nodes: list[str] = []

    def note(event: str, nodes: list[str] | None = None) -> None:
        count = len(last_nodes if nodes is None else nodes)
        timeline.append((round(time.monotonic() - t0, 1), count, event))
        log(f"{timeline[-1][0]:6.1f}s  workers={count}  {event}")

    def poll_nodes() -> None:
        nonlocal last_nodes
        nodes = worker_nodes()
        added, removed = set(nodes) - set(last_nodes), set(last_nodes) - set(nodes)
        for node in sorted(added):
            seen_nodes.add(node)
            note(f"worker node ..{node[-6:]} joined", nodes)
        for node in sorted(removed):
            note(f"worker node ..{node[-6:]} removed", nodes)
        last_nodes = nodes

    try:
        poll_nodes()
        note(f"start: cluster CPUs={ray.cluster_resources().get('CPU', 0):g}")
        job = prepare("autoscaling", JobRequest("sleepy_sum", {"n": args.n}, args.chunks), JobLimits(10**12, 10**6))
        record = job.record
        await store.create_job(record, inputs=job.inputs)
        await get_runner().submit.remote(record.job_id)
        note(f"job submitted: {record.total_chunks} chunks of 1 CPU each")
        deadline = time.monotonic() + args.timeout
        status, done = None, -1
        while True:
            poll_nodes()
            job = await store.get_job(record.job_id)
            if (job.status.value, job.completed_chunks) != (status, done):
                status, done = job.status.value, job.completed_chunks
                note(f"job {status}, {done}/{job.total_chunks} chunks done")
            if job.status.terminal:
                break
            assert time.monotonic() < deadline, f"job not finished after {args.timeout} s"
            await asyncio.sleep(0.25)
        finished_at = time.monotonic() - t0
        # idle workers must go away again (idle_timeout_minutes in the cluster config)
        deadline = time.monotonic() + args.idle_wait
        while last_nodes and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            poll_nodes()
        note("all idle workers removed" if not last_nodes else f"{len(last_nodes)} worker(s) still alive")
        facts = await store.get_chunk_facts(record.job_id)
        return {
            "status": job.status.value,
            "detail": job.detail,
            "result": job.result,
            "expected": args.n * (args.n + 1) // 2,
            "job_seconds": round(finished_at, 1),
            "max_workers_seen": max(count for _, count, _ in timeline),
            "workers_seen": sorted(seen_nodes),
            "workers_left": last_nodes,
            "chunk_nodes": sorted({f.node_id for f in facts.values()}),
            "timeline": timeline,
        }
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("--idle-wait", type=float, default=60)
    args = parser.parse_args()

    import ray

    from compute.config import get_compute_settings

    ray.init(address=os.environ["RAY_ADDRESS"], namespace=get_compute_settings().ray_namespace,
             logging_level="WARNING", log_to_driver=False)
    try:
        output = asyncio.run(scenario(args))
    finally:
        ray.shutdown()
    print(json.dumps(output), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
