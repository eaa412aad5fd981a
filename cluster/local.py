"""The local stack behind ``make run``: ``python -m cluster up|down|status``.

``up`` starts Redis (unless ``REDIS_URL`` is set), a private Ray head with its dashboard and the Serve
app behind the chosen ingress, in the foreground; Ctrl-C or SIGTERM stops what was started, in reverse
order. ``down`` and ``status`` find that process through the state file. Each part has its own module;
this one only puts them together, in order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from cluster import deploy
from cluster.ingress import configure_ingress, remove_haproxy_files
from cluster.jwt_secret import ensure_jwt_secret
from cluster.ports import port_in_use
from cluster.ray_head import RayHead
from cluster.redis_process import RedisProcess
from cluster.state import data_dir, read_state, remove_state, write_state


class LocalStack:
    def __init__(self, ray_port: int | None, dashboard_host: str, num_cpus: int | None):
        self.host = os.environ.get("HOST", "127.0.0.1")
        self.port = int(os.environ.get("PORT", "8000"))
        self.dashboard_port = int(os.environ.get("RAY_DASHBOARD_PORT", "8265"))
        self.dashboard_host = dashboard_host
        self.head = RayHead(ray_port, dashboard_host, self.dashboard_port, num_cpus, data_dir() / "ray-start.log")
        self.redis: RedisProcess | None = None
        self.ingress = os.environ.get("SERVE_INGRESS", "haproxy")
        self.replicas = 0  # SERVE_REPLICAS, read by start()

    def preflight(self) -> None:
        for what, host, port in (("HTTP", self.host, self.port), ("Ray dashboard", self.dashboard_host,
                                                                   self.dashboard_port)):
            if port_in_use(host, port):
                raise RuntimeError(f"{what} port {host}:{port} is already in use; stop what uses it or set "
                                   f"{'PORT' if what == 'HTTP' else 'RAY_DASHBOARD_PORT'}.")

    def start(self) -> None:
        self.preflight()
        configure_ingress(self.ingress, data_dir(), self.host)
        self.replicas = deploy.replica_count()
        if not os.environ.get("REDIS_URL"):
            self.redis = RedisProcess(data_dir() / "redis").start()
            os.environ["REDIS_URL"] = self.redis.url
        ensure_jwt_secret(data_dir())
        os.environ.setdefault("RAY_DASHBOARD_URL", f"http://127.0.0.1:{self.dashboard_port}")
        # Every process of the stack (replicas, runner, workers) inherits these: artifacts under the
        # data dir, and the folder `make run` starts from on the import path, so a kind module of
        # yours there (EXTRA_JOB_KIND_MODULES=examples.kinds.monte_carlo_pi) imports in the workers.
        os.environ.setdefault("ARTIFACT_STORE_URL", str((data_dir() / "artifacts").resolve()))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))
        self.head.start()
        deploy.deploy_app(self.host, self.port, self.replicas)

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self.head.connected:
            deploy.shutdown_serve()
        self.head.stop()
        if self.head.node_id is not None:
            remove_haproxy_files(self.head.node_id)
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def up(ray_port: int | None = None, dashboard_host: str = "127.0.0.1", num_cpus: int | None = None) -> int:
    stack = LocalStack(ray_port, dashboard_host, num_cpus)
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    def listen_for_stop():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    listen_for_stop()
    try:
        stack.start()
        listen_for_stop()  # ray.init installs its own handlers, which would skip our clean-up
        if not deploy.wait_healthy(f"{stack.base_url}/monitoring/health"):
            print("The service did not become healthy; see the Ray logs under /tmp/ray/session_latest/logs.",
                  file=sys.stderr)
            return 1
        write_state({"pid": os.getpid(), "url": stack.base_url, "redis_url": os.environ["REDIS_URL"],
                     "dashboard": f"http://127.0.0.1:{stack.dashboard_port}",
                     "ray_logs": f"{stack.head.temp_dir}/session_latest/logs"})
        print(f"\n  Ray Jobs is up.\n"
              f"    UI             {stack.base_url}/\n"
              f"    API docs       {stack.base_url}/docs  (ReDoc: {stack.base_url}/redoc)\n"
              f"    HTTP ingress   {stack.ingress} (SERVE_INGRESS), {stack.replicas} replica(s) (SERVE_REPLICAS)\n"
              f"    Ray dashboard  http://127.0.0.1:{stack.dashboard_port}\n"
              f"    Ray logs       {stack.head.temp_dir}/session_latest/logs\n"
              f"  Press Ctrl-C to stop.\n", flush=True)
        while not stopping.wait(1.0):
            pass
        print("Stopping ...", flush=True)
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        remove_state()


def down(timeout: float = 60) -> int:
    state = read_state()
    if state is None:
        print("Nothing to stop (no stack started from this directory).")
        return 0
    try:
        os.kill(state["pid"], signal.SIGTERM)
    except ProcessLookupError:
        remove_state()
        print("The stack was not running.")
        return 0
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(state["pid"], 0)
        except ProcessLookupError:
            print("Stopped.")
            return 0
        time.sleep(0.5)
    print("The stack did not stop in time.", file=sys.stderr)
    return 1


def status() -> int:
    state = read_state()
    if state is None:
        print("Not running.")
        return 1
    try:
        health = httpx.get(f"{state['url']}/monitoring/health", timeout=5).json()
    except httpx.HTTPError as exc:
        health = {"status": f"unreachable ({type(exc).__name__})"}
    print(json.dumps({**state, "health": health}, indent=2))
    return 0 if health.get("status") == "ok" else 1
