"""The Serve app on the connected Ray cluster: deploying it, knowing when it answers, removing it.

Apart from the Ray head because the app is its own unit: ``bench/redeploy.py`` redeploys it on a
running stack under the same ``APP_NAME``. Ray is imported only when used: ``cluster up`` must set
Ray's environment before the first import (``cluster/ray_head.py``).
"""

from __future__ import annotations

import os
import sys
import time

import httpx

APP_NAME = "ray-jobs"


def replica_count() -> int:
    """``SERVE_REPLICAS``, default 2: one keeps answering while the other restarts, and each is one
    Python process (one core). They reserve no CPU, so they never hold back chunks."""
    value = os.environ.get("SERVE_REPLICAS", "2")
    if not value.isdigit() or int(value) < 1:
        raise RuntimeError(f"SERVE_REPLICAS must be a positive integer (got {value!r})")
    return int(value)


def deploy_app(host: str, port: int, replicas: int) -> None:
    from ray import serve

    from serve_app.deployment import build_app

    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app({"num_replicas": replicas}), name=APP_NAME, route_prefix="/")


def wait_healthy(url: str, timeout: float = 300) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def shutdown_serve() -> None:
    """Remove Serve and its apps from the cluster (before the driver disconnects)."""
    from ray import serve

    try:
        serve.shutdown()
    except Exception as exc:  # the cluster may already be gone
        print(f"serve shutdown: {type(exc).__name__}", file=sys.stderr)
