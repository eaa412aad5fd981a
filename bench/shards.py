"""``python -m bench.shards``: runner shards on a multi-node Ray cluster on this machine.

A private redis-server and a ``ray.cluster_utils.Cluster`` (a head with no CPU for tasks and
``--nodes`` one-CPU worker nodes) in this process; the runners are the service's own ``JobRunner``
actors, fed directly (no HTTP), first one shard, then two (each in a namespace of its own). For
each, it runs ``--jobs`` range_sum jobs of ``--chunks`` trivial chunks at once (ids spread over the
shards as hashing spreads them) and prints, as one JSON line: chunks/s (all chunks ÷ wall time from
the first hand-off to the last job recorded) and the runners' CPU seconds per chunk (user + system
time of the runner processes, from /proc, before and after). Needs a private RAY_TMPDIR, which it
makes itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def runner_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


async def one_round(store, runners: list, shards: int, jobs: int, chunks: int) -> dict:
    from compute.config import JobLimits
    from compute.runner import shard_of
    from compute.submission import JobRequest, prepare

    prepared = [prepare("bench-shards", JobRequest("range_sum", {"n": 1_000_000}, chunks), JobLimits(10**12, 10**6))
                for _ in range(jobs)]
    for job in prepared:
        await store.create_job(job.record, inputs=job.inputs)
    started = time.monotonic()
    await asyncio.gather(*[runners[shard_of(job.record.job_id, shards)].submit.remote(job.record.job_id)
                           for job in prepared])
    ids = [job.record.job_id for job in prepared]
    while not all(record.status.terminal for record in await store.get_jobs(ids)):
        await asyncio.sleep(0.02)
    wall = time.monotonic() - started
    records = await store.get_jobs(ids)
    assert all(r.status.value == "completed" and r.result == 500000500000 for r in records), records
    return {"chunks_per_s": round(jobs * chunks / wall, 1), "wall_s": round(wall, 2)}


def run_phase(quick: bool, repeats: int, log) -> dict:
    """The ``shards`` phase of ``python -m bench``: this module in a subprocess (it starts Ray in its own
    process), its JSON line as the phase's result."""
    log("[shards] runner shards, 1 then 2, on a private ray.cluster_utils.Cluster (before the stack starts) ...")
    r = subprocess.run([sys.executable, "-m", "bench.shards", "--repeats", str(1 if quick else max(repeats, 2))],
                       cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
                       env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (r.stdout + r.stderr)[-2000:]}
    log(f"[shards] 1 shard {out['shards_1']['chunks_per_s']} chunks/s, 2 shards {out['shards_2']['chunks_per_s']}; "
        f"runner CPU {out['shards_1']['runner_cpu_ms_per_chunk']} ms per chunk")
    return out


def rows(side: dict, row) -> None:
    """Table rows (``row`` is report.build_rows' helper): 2 shards in the project column, 1 in the peer
    column, so the ratio is the gain; then the runner's CPU time per chunk and one shard's ceiling."""
    s = side.get("shards")
    if not isinstance(s, dict):
        return
    if "error" in s:
        row("runner shards: chunks/s, 2 vs 1", None, None, note=f"error: {s['error'][-200:]}")
        return
    one, two = s["shards_1"], s["shards_2"]
    row("runner shards: chunks/s, 2 vs 1", two["chunks_per_s"], one["chunks_per_s"], fmt="{:.0f}",
        note=f"{s['nodes']} one-CPU worker nodes + a no-CPU head (ray.cluster_utils.Cluster), {s['jobs']} jobs of "
             f"{s['chunks_per_job']} trivial chunks at once; runs {one['runs']} vs {two['runs']}")
    cpu = one["runner_cpu_ms_per_chunk"]
    row("runner CPU per chunk, 1 shard (ms)", cpu, two["runner_cpu_ms_per_chunk"], kind="abs", fmt="{:.2f}",
        note=f"launch, collect, record; peer column: with 2 shards; one shard's ceiling ≈ {1000 / cpu:.0f} chunks/s "
             "(README: projection for 10 and 100 nodes)" if cpu else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.shards", description=__doc__)
    p.add_argument("--nodes", type=int, default=2, help="one-CPU worker nodes (default 2)")
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--chunks", type=int, default=250)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="rj-bs-", dir="/tmp")
    os.environ["RAY_TMPDIR"] = tmp
    sys.path.insert(0, str(REPO))
    from cluster.redis_process import RedisProcess

    redis = RedisProcess(Path(tmp) / "redis", appendonly=False).start()
    os.environ.update({"REDIS_URL": redis.url, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                       "RESULT_CACHE_SECONDS": "0", "INTERACTIVE_SLOTS": "0",
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
    import ray
    from ray.cluster_utils import Cluster

    from compute.config import get_compute_settings
    from compute.runner import JobRunner, runner_name
    from compute.storage.jobs import JobStore

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    out: dict = {"nodes": a.nodes, "jobs": a.jobs, "chunks_per_job": a.chunks}
    try:
        for _ in range(a.nodes):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)

        async def measure() -> None:
            store = JobStore(redis.url, key_prefix=get_compute_settings().redis_key_prefix)
            try:
                for shards in (1, 2):
                    namespace = f"bench-shards-{shards}"
                    runners = [JobRunner.options(name=runner_name(i), namespace=namespace,
                                                 scheduling_strategy="SPREAD").remote(i, shards)
                               for i in range(shards)]
                    pids = await asyncio.gather(*[r.__ray_call__.remote(lambda self: os.getpid()) for r in runners])
                    await one_round(store, runners, shards, a.jobs, 20)  # warm-up: workers, imports
                    rounds, cpu = [], []
                    for _ in range(a.repeats):
                        before = runner_cpu_seconds(pids)
                        rounds.append(await one_round(store, runners, shards, a.jobs, a.chunks))
                        cpu.append((runner_cpu_seconds(pids) - before) / (a.jobs * a.chunks))
                    out[f"shards_{shards}"] = {
                        "chunks_per_s": statistics.median(r["chunks_per_s"] for r in rounds),
                        "runs": [r["chunks_per_s"] for r in rounds],
                        "runner_cpu_ms_per_chunk": round(statistics.median(cpu) * 1000, 3),
                    }
                    print(f"{shards} shard(s): {out[f'shards_{shards}']}", file=sys.stderr, flush=True)
                    for runner in runners:
                        ray.kill(runner)
            finally:
                await store.close()

        asyncio.run(measure())
        out["ratio_2_to_1"] = round(out["shards_2"]["chunks_per_s"] / out["shards_1"]["chunks_per_s"], 2)
    finally:
        ray.shutdown()
        cluster.shutdown()
        redis.stop()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
