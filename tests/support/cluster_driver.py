"""Running a multi-node Ray cluster test in a driver process of its own (a process joins one Ray
cluster, and this pytest process may already be in the session's).

``run_driver`` is the test side: it runs a driver script with a private RAY_TMPDIR (so Ray's "current
cluster" file and session dirs stay private), yields the one JSON object the driver prints, and
fails if the driver left processes behind. ``driver_session`` is the driver side: a private
redis-server and the environment the raylets (and so every worker and runner) inherit, then, however
the driver ends, Ray and what it registered are shut down and its output is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import psutil

from tests.support.processes import processes_of

REPO = Path(__file__).resolve().parents[2]


def run_driver(script: Path, timeout: float) -> Iterator[dict]:
    tmp_dir = tempfile.mkdtemp(prefix="rj-drv-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "RAY_TMPDIR": tmp_dir}
    env.pop("RAY_ADDRESS", None)
    try:
        proc = subprocess.run([sys.executable, str(script)], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        assert proc.returncode == 0 and lines, f"driver failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        yield json.loads(lines[-1])
    finally:
        deadline = time.monotonic() + 15  # workers may take a moment to exit after the cluster stops
        while (leftovers := processes_of(tmp_dir)) and time.monotonic() < deadline:
            time.sleep(0.5)
        for p in leftovers:  # the driver shuts its cluster down; this is only a safety net
            try:
                p.kill()
            except psutil.Error:
                pass
        shutil.rmtree(tmp_dir, ignore_errors=True)
        assert not leftovers, f"{script.name} left processes behind: {[p.pid for p in leftovers]}"


@contextlib.contextmanager
def driver_session(namespace: str, **settings: str):
    """Yields (the Redis, the output dict, an ExitStack for the cluster's shutdown)."""
    assert os.environ.get("RAY_TMPDIR"), "run me with a private RAY_TMPDIR"
    from cluster.redis_process import RedisProcess

    redis = RedisProcess(Path(os.environ["RAY_TMPDIR"]) / "redis", appendonly=False).start()
    os.environ.update({
        "REDIS_URL": redis.url,
        "RAY_NAMESPACE": namespace,
        "EXTRA_JOB_KIND_MODULES": "tests.support.kinds",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        # Token auth on, with a token private to this cluster (no dependency on ~/.ray/auth_token).
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        **settings,
    })
    output: dict = {}
    started = time.monotonic()
    cleanup = contextlib.ExitStack()
    try:
        yield redis, output, cleanup
    finally:
        import ray

        ray.shutdown()
        cleanup.close()
        redis.stop()
        output["total_seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps(output), flush=True)
