"""Run ``python -m cluster up`` (what ``make run`` runs) as a child process, on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from cluster.ports import free_port
from tests.support.stack import REPO, environment_without_session

# What cluster/ingress.py puts into the test session's environment: a stack starts its own.
INGRESS_ENV = ("FORWARDED_ALLOW_IPS", "INGRESS_PROXIES", "RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_ENABLE_HA_PROXY",
               "RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_BINARY_PATH",
               "RAY_SERVE_HAPROXY_TUNE_BUFSIZE", "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S")


READY_ANSWERS = 6


class LocalStackProcess:
    def __init__(self, data_dir: Path, **env: str):
        self.port = free_port()
        self.dashboard_port = free_port()
        # the replicas' own HTTP ports from a range of this stack's (Serve starts every stack's at 30000)
        direct = 31000 + (self.port % 80) * 100
        self.env = {
            **environment_without_session(),
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(direct),
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(direct + 99),
            "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(direct + 10_000),
            "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(direct + 10_099),
            "PORT": str(self.port),
            "RAY_DASHBOARD_PORT": str(self.dashboard_port),
            "DATA_DIR": str(data_dir),
            "EXTRA_JOB_KIND_MODULES": "tests.support.kinds",
            "PYTHONPATH": str(REPO),
            "RAY_NAMESPACE": "ray-jobs-stack",
            **env,
        }
        self.env.pop("RAY_ADDRESS", None)
        for name in INGRESS_ENV:  # the test session's own ingress (its HAProxy's ports and wrapper)
            if name not in env:
                self.env.pop(name, None)
        self.log_path = Path(data_dir) / "stack.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300) -> "LocalStackProcess":
        Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "cluster", "up"], cwd=REPO, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline, answers = time.time() + timeout, 0
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cluster up exited with {self.process.returncode}: {self.tail()}")
            try:
                healthy = httpx.get(f"{self.url}/monitoring/health", timeout=5).status_code == 200
                answers = answers + 1 if healthy else 0
                # several in a row: HAProxy spreads them over the replicas, so every one is serving
                if answers >= READY_ANSWERS and (Path(self.env["DATA_DIR"]) / "stack.json").exists():
                    return self
            except httpx.HTTPError:
                answers = 0
            time.sleep(0.5 if not answers else 0.05)
        raise RuntimeError(f"stack not healthy after {timeout} s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def state(self) -> dict:
        import json

        return json.loads((Path(self.env["DATA_DIR"]) / "stack.json").read_text())

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as Ctrl-C would; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill_everything(self) -> None:
        """Simulate the head machine dying: SIGKILL the stack and every process it started."""
        processes = [psutil.Process(self.process.pid), *self.descendants()]
        for proc in processes:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(processes, timeout=10)
        self.process.wait(10)
