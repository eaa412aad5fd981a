"""Run one job on the current Ray cluster from the command line, with the service's own compute code.

    python -m cluster.batch --n 1000000000 --chunks 64 --kind range_sum [--user USER_ID] [--redis-url URL]
    python -m cluster.batch --kind mandelbrot --params '{"width": 2048, "height": 2048}' --chunks 32

The job is recorded in Redis like one submitted over HTTP (owner ``--user``, default ``batch``, indexed
so it shows up in that user's history), handed to the shared JobRunner actor, and followed until it
ends. Prints progress as chunks finish, then the job id and the exact result; exits 0 when the job
completed and 1 otherwise (2 for bad arguments).

It connects with ``ray.init(address=...)`` to ``--address``, else ``RAY_ADDRESS``, else ``auto`` (the
local cluster), so it also works as a ``ray job submit`` entrypoint::

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m cluster.batch --n 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

PENDING_GRACE_SECONDS = 30.0
TERMINAL_NAMES = {"completed", "failed", "cancelled"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cluster.batch", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--n", type=int, help="the range kinds' n (>= 1)")
    what.add_argument("--params", help="the kind's params as a JSON object (GET /kinds shows each kind's)")
    parser.add_argument("--chunks", type=int, default=8, help="number of chunks (>= 1, default 8)")
    parser.add_argument("--kind", default="range_sum", help="job kind (default range_sum)")
    parser.add_argument("--priority", default="low", choices=("high", "normal", "low"),
                        help="scheduling priority (default low: batch work yields to interactive work)")
    parser.add_argument("--user", default="batch",
                        help="owner of the job: a user id, so it appears in that user's history (default: batch)")
    parser.add_argument("--redis-url", default=None, help="Redis of the service (default: REDIS_URL)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (default: RAY_ADDRESS, else 'auto' = the local cluster)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="give up (and cancel the job) after this many seconds; 0 = no limit")
    return parser


def has_credentials(url: str) -> bool:
    """Whether a URL carries a user or password (``scheme://user:pw@host/...``)."""
    return "@" in url.split("://", 1)[-1].split("/", 1)[0]


def _connect(address: str | None) -> None:
    import json

    import ray

    from compute.config import get_compute_settings

    settings = get_compute_settings()
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    # These only matter if this driver is the one that creates the runner actor (no API running
    # yet): they then see the same Redis and settings as we do. A Redis URL with a password is left out:
    # Ray writes runtime envs in plain text to its logs and job info; the cluster's own env must have it.
    env_vars = {"RAY_NAMESPACE": settings.ray_namespace, "REDIS_KEY_PREFIX": settings.redis_key_prefix}
    if not has_credentials(settings.redis_url):
        env_vars["REDIS_URL"] = settings.redis_url
    for name in ("EXTRA_JOB_KIND_MODULES", "JOB_TTL_SECONDS", "CHUNK_MAX_RETRIES", "JOB_TIMEOUT_SECONDS",
                 "ARTIFACT_STORE_URL", "MAX_RESULT_BYTES", "MAX_ARTIFACT_BYTES_PER_JOB"):
        if os.environ.get(name):
            env_vars[name] = os.environ[name]
    # Under `ray job submit` the job's own runtime env is merged in, and Ray refuses a key set twice.
    injected = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}") or "{}")
    for name in ((injected.get("runtime_env") or {}).get("env_vars") or {}):
        env_vars.pop(name, None)
    ray.init(address=address, namespace=settings.ray_namespace, logging_level="WARNING", log_to_driver=False,
             runtime_env={"env_vars": env_vars} if env_vars else None)


def _progress_line(status: str, done: int, total: int) -> str:
    pct = 100.0 * done / total if total else 0.0
    return f"progress: {done}/{total} chunks ({pct:.1f}%) [{status}]"


async def run(args, job, max_active: int) -> int:
    from compute import submission
    from compute.config import get_compute_settings
    from compute.records import JobStatus
    from compute.runner import get_runner
    from compute.storage.events import job_events
    from compute.storage.jobs import JobStore, RedisError

    settings = get_compute_settings()
    record = job.record
    job_id = record.job_id
    store = JobStore(settings.redis_url, settings.job_ttl_seconds, key_prefix=settings.redis_key_prefix)
    events = job_events(store.redis, store.keys, job_id, heartbeat=1.0)
    runner = None
    # `ray job stop` (and `cluster submit` on Ctrl-C) sends SIGTERM: cancel the job too, like Ctrl-C here.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    try:
        await events.__anext__()  # subscribed before the job can move, so no change is missed
        started = time.monotonic()
        runner = await asyncio.to_thread(get_runner, job_id)

        async def hand_off(job_id: str) -> None:
            await runner.submit.remote(job_id)

        try:  # the same acceptance as over HTTP: the active-job limit, the record, the hand-off
            await submission.accept(store, hand_off, job, index_owner=True, max_active=max_active)
        except submission.Refused as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"job_id: {job_id}", flush=True)
        print(f"submitted: kind={record.kind} params={json.dumps(record.params)} chunks={record.total_chunks} "
              f"owner={record.owner}",
              flush=True)
        current = await store.get_job(job_id)
        if current is None:
            print("error: the job record disappeared from Redis", file=sys.stderr)
            return 1
        status, done, last = current.status.value, current.completed_chunks, None
        while True:
            line = _progress_line(status, done, current.total_chunks)
            if line != last:
                print(line, flush=True)
                last = line
            if status in TERMINAL_NAMES:
                break
            elapsed = time.monotonic() - started
            if status == "pending" and elapsed > PENDING_GRACE_SECONDS:
                print(f"error: the job is still pending after {PENDING_GRACE_SECONDS:g} s; is the job runner using "
                      f"the same Redis as this command ({settings.redis_url.split('@')[-1]})?", file=sys.stderr)
                await runner.cancel.remote(job_id, "Not picked up by the job runner.")
                return 1
            if args.timeout and elapsed > args.timeout:
                await runner.cancel.remote(job_id, f"Cancelled by the batch command after {args.timeout:g} s.")
                print(f"error: timed out after {args.timeout:g} s; the job was cancelled", file=sys.stderr)
                return 1
            message = await events.__anext__()  # a change, or None after 1 s of silence
            if message is not None and message.get("status") not in TERMINAL_NAMES:
                status, done = message["status"], message["completed_chunks"]
                continue
            current = await store.get_job(job_id)  # the final change, or a heartbeat: read the whole record
            if current is None:
                print("error: the job record disappeared from Redis", file=sys.stderr)
                return 1
            status, done = current.status.value, current.completed_chunks
        print(f"status: {current.status.value}", flush=True)
        if current.detail:
            print(f"detail: {current.detail}", flush=True)
        if current.duration_ms is not None:
            print(f"duration: {current.duration_ms / 1000:.3f} s", flush=True)
        if current.status is JobStatus.completed:
            print(f"result: {json.dumps(current.result)}", flush=True)
            return 0
        return 1
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM: stop the job too
        if runner is not None:
            await asyncio.shield(runner.cancel.remote(job_id, "Cancelled from the batch command."))
        raise
    except RedisError as exc:
        print(f"error: Redis at {settings.redis_url.split('@')[-1]} is unavailable: {exc}", file=sys.stderr)
        return 1
    finally:
        await events.aclose()
        await store.close()


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.redis_url:
        os.environ["REDIS_URL"] = args.redis_url
    from pydantic import ValidationError

    from compute import submission
    from compute.config import get_compute_settings

    get_compute_settings.cache_clear()
    try:  # the service's own limits (MAX_N, MAX_CHUNKS, MAX_ACTIVE_JOBS_PER_USER), as for HTTP users
        limits = get_compute_settings()
    except ValidationError as exc:
        print(f"error: invalid settings: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    try:
        params = {"n": args.n} if args.params is None else json.loads(args.params)
    except json.JSONDecodeError as exc:
        print(f"error: --params is not JSON: {exc}", file=sys.stderr)
        return 2
    request = submission.JobRequest(args.kind, params, args.chunks, legacy=args.params is None,
                                    priority=args.priority)
    try:
        job = submission.prepare(args.user, request, limits.job_limits)
    except submission.InvalidInput as exc:
        print(f"error: --{exc.field} {exc.message}", file=sys.stderr)
        return 2
    except submission.UploadNotFound as exc:
        print(f"error: --{exc}", file=sys.stderr)
        return 2
    _connect(args.address)
    try:
        return asyncio.run(run(args, job, limits.job_limits.max_active))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; the job was cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
