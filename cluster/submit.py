"""``python -m cluster submit``: run ``cluster.batch`` on a Ray cluster through the Ray Jobs API.

The same as::

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"REDIS_URL": ...}}' -- python -m cluster.batch --n ... --chunks ...

with the Redis URL taken from the environment (``REDIS_URL``) or the local stack's state file
(``.data/stack.json`` written by ``python -m cluster up``), and Ray's token (``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) sent as a bearer token unless ``RAY_AUTH_MODE=disabled``.
Follows the job's logs and returns its exit status (0 when the job completed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from pathlib import Path

from cluster.batch import has_credentials
from cluster.state import read_state

DEFAULT_DASHBOARD = "http://127.0.0.1:8265"
DESCRIPTION = ("Run one job (cluster.batch) on a Ray cluster through the Ray Jobs API, follow its logs and "
               "exit 0 if it completed.")
PASSED_ENV = ("RAY_NAMESPACE", "EXTRA_JOB_KIND_MODULES", "JOB_TTL_SECONDS", "CHUNK_MAX_RETRIES",
              "JOB_TIMEOUT_SECONDS", "REDIS_KEY_PREFIX", "ARTIFACT_STORE_URL", "MAX_RESULT_BYTES",
              "MAX_ARTIFACT_BYTES_PER_JOB")


def add_submit_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "submit", help="run one job on a Ray cluster with 'ray job submit' (cluster.batch) and follow it",
        description=DESCRIPTION)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--n", type=int, help="the range kinds' n (>= 1)")
    what.add_argument("--params", help="the kind's params as a JSON object (GET /kinds shows each kind's)")
    parser.add_argument("--chunks", type=int, default=8, help="number of chunks (default 8)")
    parser.add_argument("--kind", default="range_sum", help="job kind (default range_sum)")
    parser.add_argument("--user", default=None, help="owner user id (default: batch)")
    parser.add_argument("--address", default=None,
                        help="Ray dashboard URL (default: RAY_API_SERVER_ADDRESS, the local stack's dashboard, "
                             f"else {DEFAULT_DASHBOARD})")
    parser.add_argument("--redis-url", default=None,
                        help="the service's Redis (default: REDIS_URL, else the local stack's)")
    parser.add_argument("--working-dir", default=".", help="code to ship to the cluster (default: .)")
    parser.add_argument("--no-wait", action="store_true", help="print the submission id and return at once")


def dashboard_address(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("RAY_API_SERVER_ADDRESS"):
        return os.environ["RAY_API_SERVER_ADDRESS"]
    state = read_state() or {}
    return state.get("dashboard") or DEFAULT_DASHBOARD


def redis_url(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    url = (read_state() or {}).get("redis_url")
    if url and "://" not in url:  # the state file drops credentials ("user:pw@host..." -> "host...")
        url = f"redis://{url}"
    return url


def auth_token() -> str | None:
    """Ray's token, unless token auth is explicitly disabled."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return None
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def entrypoint(args) -> str:
    what = ["--n", str(args.n)] if args.params is None else ["--params", args.params]
    parts = ["python", "-m", "cluster.batch", *what, "--chunks", str(args.chunks), "--kind", args.kind]
    if args.user:
        parts += ["--user", args.user]
    return shlex.join(parts)


def runtime_env(args) -> dict:
    # sent when set; an empty REDIS_KEY_PREFIX means something (the unprefixed keys of earlier versions)
    env_vars = {name: os.environ[name] for name in PASSED_ENV
                if os.environ.get(name) or (name == "REDIS_KEY_PREFIX" and name in os.environ)}
    url = redis_url(args.redis_url)
    if url and has_credentials(url):
        # Ray logs runtime envs in plain text (runtime_env_agent.log, the dashboard's job info): a password
        # must not go there. The cluster's own environment has to provide REDIS_URL then.
        print("note: REDIS_URL has credentials, so it is not sent with the job; the job driver uses the "
              "cluster's own REDIS_URL", file=sys.stderr)
    elif url:
        env_vars["REDIS_URL"] = url
    return {"working_dir": args.working_dir, "env_vars": env_vars}


async def _follow(client, submission_id: str) -> None:
    async for lines in client.tail_job_logs(submission_id):
        print(lines, end="", flush=True)


def run_submit(args) -> int:
    from ray.job_submission import JobStatus, JobSubmissionClient

    address = dashboard_address(args.address)
    token = auth_token()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        client = JobSubmissionClient(address, headers=headers)
    except Exception as exc:  # unreachable, or refused (auth)
        print(f"error: cannot reach the Ray dashboard at {address}: {exc}", file=sys.stderr)
        return 1
    command = entrypoint(args)
    try:
        submission_id = client.submit_job(entrypoint=command, runtime_env=runtime_env(args))
    except Exception as exc:  # e.g. 500 "No available agent": the head's job agent could not bind its port
        print(f"error: the Ray Jobs API at {address} refused the job: {exc}", file=sys.stderr)
        return 1
    print(f"submitted Ray job {submission_id} to {address}: {command}", flush=True)
    if args.no_wait:
        return 0
    try:
        asyncio.run(_follow(client, submission_id))
        status = client.get_job_status(submission_id)
        while not status.is_terminal():  # the log stream can end a moment before the status changes
            time.sleep(0.2)
            status = client.get_job_status(submission_id)
    except KeyboardInterrupt:
        client.stop_job(submission_id)
        print(f"stopped Ray job {submission_id}", file=sys.stderr)
        return 130
    print(f"Ray job {submission_id}: {status.value}", flush=True)
    return 0 if status == JobStatus.SUCCEEDED else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.submit", description=DESCRIPTION)
    add_arguments(parser)
    return run_submit(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
