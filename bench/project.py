"""The project's stack, started exactly as ``make run`` does: ``python -m cluster up`` in a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench import procs

REPO = Path(__file__).resolve().parent.parent
# The environment of a developer's shell must not steer the stack somewhere else.
SCRUB = ("RAY_ADDRESS", "REDIS_URL", "JWT_SECRET", "ENVIRONMENT", "HOST", "PORT", "RAY_DASHBOARD_PORT",
         "RAY_DASHBOARD_URL", "DATA_DIR", "RATE_LIMIT_ENABLED", "MAX_ACTIVE_JOBS_PER_USER", "RESULT_CACHE_SECONDS",
         "MAX_N")


class StackError(RuntimeError):
    pass


class ProjectStack:
    def __init__(self, extra_env: dict[str, str] | None = None, log=print, start_timeout: float = 300,
                 code_dir: Path | None = None):
        self.extra_env = dict(extra_env or {})
        # where the project's code comes from: the work tree (as `make run`), or a `git archive` copy
        self.code_dir = Path(code_dir) if code_dir else REPO
        self.log = log
        self.start_timeout = start_timeout
        self.tmp = Path(tempfile.mkdtemp(prefix="ray-jobs-bench-"))
        self.port = procs.free_port()
        self.dashboard_port = procs.free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmp / "cluster-up.log"
        self.seen: dict[int, procs.ProcId] = {}  # every process of the stack we ever saw
        self.session_dir: str | None = None
        self.gcs_address: str | None = None
        self.node_id: str | None = None
        self.ray_tmpdir: str | None = None  # cluster/ray_head.py gives its Ray head a private RAY_TMPDIR
        # `cluster up` runs HAProxy unless SERVE_INGRESS=proxy (or HAProxy is switched off explicitly)
        self.haproxy = (self.extra_env.get("SERVE_INGRESS", os.environ.get("SERVE_INGRESS", "haproxy")) == "haproxy"
                        and self.extra_env.get("RAY_SERVE_ENABLE_HA_PROXY", "1") == "1")
        self.start_s: float | None = None

    # ----------------------------------------------------------------------------- start / stop
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        env.update({
            "PORT": str(self.port), "HOST": "127.0.0.1", "RAY_DASHBOARD_PORT": str(self.dashboard_port),
            "DATA_DIR": str(self.tmp / "data"), "RATE_LIMIT_ENABLED": "false",
            "MAX_ACTIVE_JOBS_PER_USER": "100000", "PYTHONUNBUFFERED": "1",
            # the phases repeat the same n and chunks: measure computing them, not the result cache
            "RESULT_CACHE_SECONDS": "0",
            # the noisy phase's big prime_count job goes beyond the default 10^9 (bench/noisy.py)
            "MAX_N": str(10**11),
        })
        if self.code_dir != REPO:
            # ahead of the editable install's finder, for this process and every Ray worker it starts
            env["PYTHONPATH"] = os.pathsep.join(x for x in (str(self.code_dir), env.get("PYTHONPATH")) if x)
        env.update(self.extra_env)
        return env

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log(f"[project] python -m cluster up  (PORT={self.port}, RAY_DASHBOARD_PORT={self.dashboard_port}, "
                 f"DATA_DIR={self.tmp / 'data'}{', ' + ' '.join(f'{k}={v}' for k, v in self.extra_env.items()) if self.extra_env else ''})")
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "cluster", "up"], cwd=self.code_dir, env=self.env(),
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)  # Ctrl-C reaches us; we stop it
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise StackError(f"cluster up exited with {self.proc.returncode}:\n{self.log_tail()}")
            self.snapshot()
            if "is up." in self.log_path.read_text(errors="replace"):
                try:
                    if httpx.get(f"{self.base_url}/monitoring/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        else:
            raise StackError(f"cluster up not healthy after {self.start_timeout:.0f} s:\n{self.log_tail()}")
        self.start_s = round(time.perf_counter() - t0, 1)
        self.snapshot()
        self.log(f"[project] up in {self.start_s} s at {self.base_url} (gcs {self.gcs_address})")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> dict:
        """SIGTERM the ``cluster up`` process (its own clean-up stops Ray, Serve and Redis), then stop
        whatever of the processes we saw is still alive (e.g. a HAProxy that outlived the stack)."""
        if self.proc is None:
            return {}
        self.snapshot()
        out = {}
        t0 = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.log("[project] cluster up did not stop in 90 s; killing it")
                self.proc.kill()
                self.proc.wait(10)
        out["up_exit"] = self.proc.returncode
        time.sleep(1.0)
        leftovers = procs.stop_leftovers(list(self.seen.values()))
        out["stop_s"] = round(time.perf_counter() - t0, 1)
        if leftovers:
            self.log(f"[project] stopped leftovers: {', '.join(leftovers)}")
        out["leftovers_stopped"] = leftovers
        self.proc = None
        return out

    def cleanup(self) -> None:
        """Remove our temp dir, our stack's private RAY_TMPDIR (cluster up leaves it behind) and HAProxy's
        per-node files; each only when no process still uses it."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        tmpdir = self.ray_tmpdir
        if tmpdir and Path(tmpdir).name.startswith("ray-jobs-") and Path(tmpdir).parent == Path(tempfile.gettempdir()):
            if not procs.tree(None, (tmpdir,)):
                shutil.rmtree(tmpdir, ignore_errors=True)
        if self.haproxy and self.node_id:
            shutil.rmtree(Path("/tmp/haproxy-serve") / self.node_id, ignore_errors=True)

    # ----------------------------------------------------------------------------- introspection
    def processes(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        return procs.tree(self.proc.pid, (self.session_dir or "", str(self.tmp)))

    def snapshot(self) -> list[psutil.Process]:
        ps = self.processes()
        for p in ps:
            try:
                self.seen.setdefault(p.pid, procs.ProcId.of(p))
            except psutil.Error:
                pass
        if self.session_dir is None:
            self.session_dir = procs.find_cmdline_value(ps, r"--session[-_]dir=(\S+)")
        if self.gcs_address is None:
            self.gcs_address = procs.find_cmdline_value(ps, r"--gcs[-_]address=(\S+)")
        if self.ray_tmpdir is None and self.session_dir:
            self.ray_tmpdir = str(Path(self.session_dir).parent.parent)  # <RAY_TMPDIR>/ray/session_...
        if self.node_id is None:
            self.node_id = procs.find_cmdline_value(ps, r"--node[-_]id=([0-9a-f]{56})\b")
        return ps

    def memory(self) -> dict:
        return procs.memory(self.snapshot())

    def find(self, prefix: str) -> list[psutil.Process]:
        return [p for p in self.snapshot() if procs.label(p).startswith(prefix)]

    def direct_ingress_ports(self) -> list[int]:
        """Ports the ApiGateway replicas listen on directly (RAY_SERVE_THROUGHPUT_OPTIMIZED / HAProxy mode),
        found from the replicas' listening sockets and checked to answer HTTP."""
        ports = []
        for rep in self.find("ray::ServeReplica"):
            for host, port in procs.listening_ports(rep):
                if 30000 <= port < 31000:
                    ports.append(port)
        return sorted(set(ports))

    def wait_replicas(self, count: int, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            reps = self.find("ray::ServeReplica")
            if len(reps) == count:
                try:
                    if httpx.get(f"{self.base_url}/monitoring/health", timeout=5).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(1)
        raise StackError(f"expected {count} ApiGateway replicas, found {len(self.find('ray::ServeReplica'))}")

    def set_replicas(self, count: int) -> None:
        """Redeploy the same app with ``num_replicas`` (build_app's own argument) from a short-lived
        driver connected to this stack's Ray; the project has no env setting for it yet."""
        if self.gcs_address is None:
            raise StackError("could not find the stack's GCS address")
        self.log(f"[project] redeploying ApiGateway with num_replicas={count} ...")
        env = self.env()
        env["RAY_ADDRESS"] = self.gcs_address
        env.setdefault("RAY_AUTH_MODE", "token")  # a client of a token-auth cluster must say so (~/.ray/auth_token)
        env["PYTHONPATH"] = os.pathsep.join(x for x in (str(REPO), env.get("PYTHONPATH")) if x)
        subprocess.run([sys.executable, "-m", "bench.redeploy", str(count)], cwd=self.code_dir, env=env,
                       check=True, timeout=300)
        self.wait_replicas(count)
