"""Driver for tests/cluster/test_scheduling.py, run in its own process (a process joins one Ray cluster).

Starts a private redis-server and a real three-node Ray cluster on this machine (a head with no CPU
for tasks, with the dashboard for Ray's state API, and two 1-CPU workers), with two runner shards,
MAX_INFLIGHT_CHUNKS=4, short leases and a short aging period, then runs the scenarios below through
the real JobRunner shards and prints one JSON object on stdout (everything else goes to stderr):

1. ``fair``: user A's two big jobs, then user B's small one, all on one shard;
2. ``priority``: a low job, then high jobs arriving while it runs;
3. ``inflight``: a big job on each shard while Ray's state API is sampled;
4. ``race``: one job handed to its shard and to a runner started in another namespace (a mix-up);
5. ``shard_kill``: a job whose shard's runner process is SIGKILLed while it runs;
6. ``restart``: jobs queued when every runner is killed for good, then run by fresh runners.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.cluster_driver import driver_session  # noqa: E402  (after the path is set)

NAMESPACE = "ray-jobs-scheduling"
SHARDS = 2
MAX_INFLIGHT = 4
LEASE_SECONDS = 3
AGING_SECONDS = 1
RESHARD = 3  # the number of shards the last scenario changes to
ACTIVE = ("PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "PENDING_OBJ_STORE_MEM_AVAIL", "PENDING_ARGS_FETCH",
          "SUBMITTED_TO_WORKER", "RUNNING")


def log(message: str) -> None:
    print(f"[scheduling {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepared(owner: str, kind: str, n: int, chunks: int, shard: int, priority: str = "normal",
             then: tuple[int, int] | None = None):
    """A job (not stored yet) whose id hashes to ``shard`` (and, with ``then`` = (shard, shards), to that
    shard of another number of shards)."""
    from compute.config import JobLimits
    from compute.runner import shard_of
    from compute.submission import JobRequest, prepare

    while True:
        job = prepare(owner, JobRequest(kind, {"n": n}, chunks, priority=priority), JobLimits(10**12, 10**6))
        job_id = job.record.job_id
        if shard_of(job_id, SHARDS) == shard and (then is None or shard_of(job_id, then[1]) == then[0]):
            return job


async def submit(store, job, runner=None) -> str:
    from compute.runner import get_runner

    await store.create_job(job.record, inputs=job.inputs)
    await (runner or get_runner(job.record.job_id)).submit.remote(job.record.job_id)
    return job.record.job_id


async def wait_done(store, job_ids, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    for job_id in job_ids:
        while not (await store.get_job(job_id)).status.terminal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not finished after {timeout} s: {await store.get_job(job_id)}")
            await asyncio.sleep(0.1)


async def describe(store, job_id: str) -> dict:
    from tests.support.kinds import executions_key

    job = await store.get_job(job_id)
    facts = await store.get_chunk_facts(job_id)
    runs = [int(i) for i in await store.redis.lrange(executions_key(job_id), 0, -1)]
    return {
        "job_id": job_id, "owner": job.owner, "priority": job.priority, "status": job.status.value,
        "detail": job.detail, "result": job.result, "expected": job.params["n"] * (job.params["n"] + 1) // 2,
        "created_at": job.created_at, "started_at": job.started_at, "completed_at": job.completed_at,
        "runs": runs,
        "chunks": [{"index": f.index, "node_id": f.node_id, "pid": f.worker_pid, "started_at": f.started_at,
                    "ended_at": f.ended_at} for f in sorted(facts.values(), key=lambda f: f.index)],
    }


def main() -> int:
    settings = {"RUNNER_SHARDS": str(SHARDS), "MAX_INFLIGHT_CHUNKS": str(MAX_INFLIGHT),
                "RUNNER_LEASE_SECONDS": str(LEASE_SECONDS), "SCHEDULER_AGING_SECONDS": str(AGING_SECONDS),
                "INTERACTIVE_SLOTS": "0"}  # the order of the regular slots alone
    with driver_session(NAMESPACE, **settings) as (redis, output, cleanup):
        run(redis, output, cleanup)
    return 0


def run(redis, output: dict, cleanup) -> None:
    import ray
    from ray.cluster_utils import Cluster
    from ray.util import state

    from cluster.ports import free_port
    from compute.config import get_compute_settings
    from compute.runner import JobRunner, get_runner, get_runners, runner_name
    from compute.storage.jobs import JobStore

    started = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": True,
                                                            "dashboard_host": "127.0.0.1",
                                                            "dashboard_port": free_port()})
    cleanup.callback(cluster.shutdown)
    output["max_inflight"], output["aging_seconds"] = MAX_INFLIGHT, AGING_SECONDS
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace=NAMESPACE, logging_level="WARNING", log_to_driver=False)
    api = "http://" + cluster.head_node.address_info["webui_url"]  # the state API of this cluster
    ray.get([runner.active_jobs.remote() for runner in get_runners()])
    output["startup_seconds"] = round(time.monotonic() - started, 1)
    log(f"cluster up in {output['startup_seconds']} s")

    async def scenario() -> None:
        store = JobStore(redis.url, key_prefix=get_compute_settings().redis_key_prefix)
        try:
            # 1. fair share: B's small job, submitted while A's two big ones wait, shares the slots
            a = [prepared("user-a", "counted_sum", 2400, 24, shard=0) for _ in range(2)]
            b = prepared("user-b", "counted_sum", 600, 6, shard=0)
            ids = [await submit(store, job) for job in a]
            await asyncio.sleep(0.5)
            ids.append(await submit(store, b))
            await wait_done(store, ids)
            output["fair"] = [await describe(store, job_id) for job_id in ids]
            log("fair done")

            # 2. priorities: high jobs arriving while a low one runs go first; the low one finishes
            low = await submit(store, prepared("user-c", "counted_sum", 2000, 20, shard=0, priority="low"))
            highs = []
            for i in range(6):
                await asyncio.sleep(0.4)
                highs.append(await submit(store, prepared(f"user-h{i}", "counted_sum", 400, 4, shard=0,
                                                          priority="high")))
            await wait_done(store, [low, *highs])
            output["priority"] = {"low": await describe(store, low),
                                  "high": [await describe(store, job_id) for job_id in highs]}
            log("priority done")

            # 3. the in-flight budget, seen from Ray's state API during a big job on each shard
            big = [await submit(store, prepared("user-d", "counted_sum", 6000, 30, shard=s)) for s in range(SHARDS)]
            samples, queued = [], []
            while not all(job.status.terminal for job in await store.get_jobs(big)):
                tasks = await asyncio.to_thread(state.list_tasks, address=api,
                                                filters=[("name", "=", "chunk:counted_sum")], limit=10_000,
                                                raise_on_missing_output=False)
                samples.append(sum(1 for t in tasks if t.state in ACTIVE))
                stats = await asyncio.gather(*[r.queue_stats.remote() for r in get_runners()])
                queued.append([s["inflight_chunks"] for s in stats])
                await asyncio.sleep(0.2)
            output["inflight"] = {"samples": samples, "runner_inflight": queued,
                                  "jobs": [await describe(store, j) for j in big]}
            log(f"inflight done: max {max(samples)} in Ray")

            # 4. two runners race for one job: its shard, and a runner of another namespace
            rogue = JobRunner.options(name="rogue-runner", namespace=NAMESPACE + "-mixup").remote(0, 1)
            race = prepared("user-e", "counted_sum", 1600, 8, shard=1)
            await store.create_job(race.record, inputs=race.inputs)
            await asyncio.gather(get_runner(race.record.job_id).submit.remote(race.record.job_id),
                                 rogue.submit.remote(race.record.job_id))
            await wait_done(store, [race.record.job_id])
            output["race"] = await describe(store, race.record.job_id)
            ray.kill(rogue)
            log("race done")

            # 5. a shard's runner SIGKILLed while it runs a job (Ray restarts it; it resumes the job)
            victim = await submit(store, prepared("user-f", "counted_sum", 4000, 20, shard=1))
            while (await store.get_job(victim)).completed_chunks < 5:
                await asyncio.sleep(0.05)
            before = await describe(store, victim)
            actor = state.list_actors(address=api, filters=[("name", "=", runner_name(1)), ("state", "=", "ALIVE")])[0]
            os.kill(actor.pid, signal.SIGKILL)
            killed_at = time.time()
            await wait_done(store, [victim])
            output["shard_kill"] = {"before": before, "after": await describe(store, victim),
                                    "killed_at": killed_at, "old_pid": actor.pid}
            log("shard kill done")

            # 6. every runner gone for good while jobs wait; fresh runners, now RESHARD of them, find
            # and finish them: each job moves to the shard its id hashes to under the new number
            queued_jobs = [await submit(store, prepared("user-g", "counted_sum", 3000, 30, shard=s,
                                                        then=(RESHARD - 1 - s, RESHARD)))
                           for s in range(SHARDS)]
            while not any(job.completed_chunks for job in await store.get_jobs(queued_jobs)):
                await asyncio.sleep(0.05)
            old = {await store.redis.get(store.keys.lease(job_id)) for job_id in queued_jobs}  # expire in 3 s
            for shard in range(SHARDS):
                ray.kill(get_runner(shard=shard), no_restart=True)
            stopped = [await describe(store, j) for j in queued_jobs]
            await asyncio.sleep(1)
            fresh = [JobRunner.options(name=runner_name(i), namespace=NAMESPACE, lifetime="detached",
                                       get_if_exists=True).remote(i, RESHARD) for i in range(RESHARD)]
            holders: dict[str, set] = {job_id: set() for job_id in queued_jobs}  # who held each job's lease
            while not all(job.status.terminal for job in await store.get_jobs(queued_jobs)):  # they recover
                for job_id in queued_jobs:
                    holder = await store.redis.get(store.keys.lease(job_id))
                    if holder and holder not in old:
                        holders[job_id].add((holder.decode() if isinstance(holder, bytes) else holder).split(":")[0])
                await asyncio.sleep(0.05)
            await wait_done(store, queued_jobs)
            ray.get([runner.active_jobs.remote() for runner in fresh])
            output["restart"] = {"before": stopped, "after": [await describe(store, j) for j in queued_jobs],
                                 "reshard": RESHARD, "holders": [sorted(holders[j]) for j in queued_jobs]}
            log("restart done")
        finally:
            await store.close()

    asyncio.run(scenario())


if __name__ == "__main__":
    sys.exit(main())
