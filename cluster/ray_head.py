"""The local stack's private Ray head: ``ray start --head --block`` as a child process, and this
process connected to it as a driver.

A child process rather than ``ray.init()`` starting Ray itself: the head gets a private temp dir and
free ports for everything (GCS, client server, dashboard agent), so it never collides with a Redis
on 6379 or with another Ray on the machine, and stopping it (SIGTERM to the child) stops exactly its
own processes. ``ray start`` sometimes gives up on a loaded machine, so it is tried again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cluster import child_process
from cluster.ports import free_port

RAY_START_ATTEMPTS = 3


class RayHead:
    def __init__(self, ray_port: int | None, dashboard_host: str, dashboard_port: int, num_cpus: int | None,
                 log_path: Path):
        self.ray_port = ray_port  # None: a private head on free ports; else a fixed GCS port others join
        self.dashboard_host = dashboard_host
        self.dashboard_port = dashboard_port
        self.num_cpus = num_cpus
        self.log_path = log_path  # `ray start`'s output, appended to at each attempt
        self.process: subprocess.Popen | None = None
        self.temp_dir: str | None = None
        self.connected = False
        self.node_id: str | None = None

    def start(self) -> None:
        """Start the head, then connect to it (``ray.init``)."""
        bin_dir = str(Path(sys.executable).parent)
        # Job drivers started by `ray job submit` run `python` from this PATH: make it the venv's.
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        if os.environ["RAY_AUTH_MODE"] == "token" and not os.environ.get("RAY_AUTH_TOKEN"):
            subprocess.run([f"{bin_dir}/ray", "get-auth-token", "--generate"], check=True,
                           stdout=subprocess.DEVNULL)  # ~/.ray/auth_token, shared with `ray job submit`
        if self.ray_port is None:
            # A private Ray temp dir (short: Ray's socket paths must fit 107 bytes). Our processes and the
            # drivers of submitted jobs inherit RAY_TMPDIR, so "the current cluster" is always this one.
            os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="ray-jobs-")
        # else: a fixed GCS port for other nodes to join (compose, cloud): Ray's default /tmp/ray, so
        # `ray status` and `ray health-check` find the head without extra settings.
        self.temp_dir = os.path.join(os.environ.get("RAY_TMPDIR", tempfile.gettempdir()), "ray")
        import ray  # after the settings above: Ray reads RAY_AUTH_MODE and RAY_TMPDIR when imported

        from compute.config import get_compute_settings

        namespace = get_compute_settings().ray_namespace
        for attempt in range(1, RAY_START_ATTEMPTS + 1):
            gcs_port = self._launch(bin_dir)
            deadline = time.time() + 300  # a loaded 2-core machine can take minutes
            while self.process.poll() is None:
                try:
                    ray.init(address=f"127.0.0.1:{gcs_port}", namespace=namespace, logging_level="WARNING")
                    self.connected = True
                    self.node_id = ray.get_runtime_context().get_node_id()
                    return
                except (ConnectionError, RuntimeError) as exc:
                    if time.time() > deadline:
                        raise RuntimeError(f"the Ray head did not come up: {exc}") from None
                    time.sleep(1)
            # `ray start` gave up (e.g. its raylet start-up timed out under load): try again, on new ports
            failure = self._log_tail()
            print(f"ray start failed (attempt {attempt} of {RAY_START_ATTEMPTS})", file=sys.stderr, flush=True)
        raise RuntimeError(f"ray start failed: {failure}")

    def _launch(self, bin_dir: str) -> int:
        gcs_port = self.ray_port or free_port()
        command = [f"{bin_dir}/ray", "start", "--head", "--block", f"--port={gcs_port}",
                   f"--dashboard-host={self.dashboard_host}",
                   f"--dashboard-port={self.dashboard_port}", "--dashboard-agent-listen-port=0",
                   f"--ray-client-server-port={free_port()}", "--disable-usage-stats"]
        if self.num_cpus is not None:
            command.append(f"--num-cpus={self.num_cpus}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # a file, not a pipe nobody reads while the head runs
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return gcs_port

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Disconnect, then stop the head (``ray start --block`` stops the head's processes on SIGTERM)."""
        if self.connected:
            import ray

            ray.shutdown()
            self.connected = False
        if self.process is not None:
            child_process.stop(self.process, 60)
            self.process = None
