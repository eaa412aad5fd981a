"""The local stack as users start it (``python -m cluster up``), a batch job through ``ray job submit``
and ``python -m cluster submit``, the result read back over the API, the Ray dashboard's own token
auth, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import httpx
import psutil
import pytest

from cluster.ports import port_in_use
from tests.support.local_stack import LocalStackProcess
from tests.support.stack import REPO, stack_env

BIN = os.path.dirname(sys.executable)
# Settings of the test session that a user's shell would not have: all the session stack sets (e.g.
# TRUSTED_PROXIES=127.0.0.1, which would let a local client name its address), and Ray's own.
SESSION_ONLY_ENV = (*(name for name in stack_env("redis://unused", JWT_JWKS_URL="")
                      if name not in ("PYTHONPATH", "EXTRA_JOB_KIND_MODULES")),  # the stack sets these itself
                    "RAY_ADDRESS", "RAY_TMPDIR")


def parse_batch_output(text: str) -> dict:
    fields = dict(re.findall(r"^(job_id|status|result): (\S+)$", text, re.MULTILINE))
    assert {"job_id", "status"} <= set(fields), text[-3000:]
    return fields


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    saved = {key: os.environ.pop(key) for key in SESSION_ONLY_ENV if key in os.environ}
    try:
        started = LocalStackProcess(tmp_path_factory.mktemp("batch-stack")).start()
    finally:
        os.environ.update(saved)
    yield started
    if started.process.poll() is None:
        started.kill_everything()


@pytest.fixture(scope="module")
def stack_user(stack):
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        email, password = f"batch-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"
        registered = client.post("/auth/register", json={"email": email, "password": password})
        assert registered.status_code == 201, registered.text
        token = client.post("/auth/login", json={"email": email, "password": password}).json()["access_token"]
    return {"user_id": registered.json()["user_id"], "headers": {"Authorization": f"Bearer {token}"}}


def user_env(stack: LocalStackProcess) -> dict:
    """A shell like the user's: the venv first on PATH, Ray's token auth on (the default)."""
    env = {k: v for k, v in stack.env.items() if k not in SESSION_ONLY_ENV}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "RAY_AUTH_MODE": "token"}


def test_ray_job_submit_runs_a_batch_job_visible_in_the_api(stack, stack_user):
    proc = subprocess.run(
        [f"{BIN}/ray", "job", "submit", "--address", stack.dashboard, "--working-dir", ".", "--",
         "python", "-m", "cluster.batch", "--n", "1000000", "--chunks", "8", "--kind", "range_sum",
         "--user", stack_user["user_id"]],
        cwd=REPO, env=user_env(stack), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = parse_batch_output(proc.stdout)
    assert (out["status"], out["result"]) == ("completed", "500000500000")
    assert re.search(r"^progress: 8/8 chunks \(100\.0%\)", proc.stdout, re.MULTILINE)
    with httpx.Client(base_url=stack.url, headers=stack_user["headers"], timeout=30) as client:
        job = client.get(f"/jobs/{out['job_id']}").json()
        assert job["status"] == "completed" and job["result"] == 500_000_500_000, job
        assert out["job_id"] in [item["job_id"] for item in client.get("/jobs").json()["items"]]


def test_cluster_submit_wrapper(stack, stack_user):
    env = {k: v for k, v in user_env(stack).items() if k != "REDIS_URL"}  # taken from DATA_DIR/stack.json
    proc = subprocess.run(
        [sys.executable, "-m", "cluster", "submit", "--n", "2000000", "--chunks", "4", "--user",
         stack_user["user_id"], "--address", stack.dashboard],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = parse_batch_output(proc.stdout)
    assert (out["status"], out["result"]) == ("completed", "2000001000000")
    assert re.search(r"^Ray job raysubmit_\w+: SUCCEEDED$", proc.stdout, re.MULTILINE)
    with httpx.Client(base_url=stack.url, headers=stack_user["headers"], timeout=30) as client:
        assert client.get(f"/jobs/{out['job_id']}").json()["result"] == 2_000_001_000_000


def test_batch_rejects_bad_arguments_before_connecting():
    for args, message in ((["--n", "5", "--kind", "nope"], "unknown kind 'nope'"),
                          (["--n", "0"], "--n must be between 1 and 1,000,000,000 (got 0)"),
                          (["--n", "10", "--chunks", "1001"], "--chunks must be between 1 and 1,000")):
        proc = subprocess.run([sys.executable, "-m", "cluster.batch", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_batch_run_directly_against_the_cluster(stack):
    """The same command as a plain driver (no Ray Jobs), which also records its coverage."""
    state = stack.state()
    env = {**user_env(stack), "REDIS_URL": state["redis_url"], "RAY_TMPDIR": state["ray_logs"].split("/ray/")[0]}
    proc = subprocess.run(
        [sys.executable, "-m", "cluster.batch", "--n", "100000", "--chunks", "3", "--kind", "prime_count",
         "--timeout", "60"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = parse_batch_output(proc.stdout)
    assert (out["status"], out["result"]) == ("completed", "9592")  # pi(10^5)
    assert "owner=batch" in proc.stdout  # no --user: the default owner


def test_batch_jobs_count_against_the_users_active_job_limit(stack, stack_user):
    """cluster.batch accepts jobs through the same code as HTTP: a user at the limit is refused."""
    state = stack.state()
    env = {**user_env(stack), "REDIS_URL": state["redis_url"], "RAY_TMPDIR": state["ray_logs"].split("/ray/")[0],
           "MAX_ACTIVE_JOBS_PER_USER": "1"}
    with httpx.Client(base_url=stack.url, headers=stack_user["headers"], timeout=30) as client:
        running = client.post("/jobs", json={"n": 60_000, "chunks": 1, "kind": "sleepy_sum"})
        assert running.status_code == 202, running.text
        try:
            proc = subprocess.run([sys.executable, "-m", "cluster.batch", "--n", "1000", "--user",
                                   stack_user["user_id"]], cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=120)
        finally:
            client.delete(f"/jobs/{running.json()['job_id']}")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "You already have 1 active jobs" in proc.stderr
        assert "job_id:" not in proc.stdout
        assert [j["job_id"] for j in client.get("/jobs").json()["items"]][:1] == [running.json()["job_id"]]


def test_make_run_keys_rate_limits_on_the_real_client_address(stack):
    """Through make run's own HAProxy: a client naming a new X-Forwarded-For in every request is still
    one client; another address has its own bucket (defaults: no TRUSTED_PROXIES, 5 demo jobs/minute)."""
    from tests.support.clients import client_from

    demo = {"n": 10, "chunks": 1}
    with client_from(stack.url, "127.0.0.2") as attacker, client_from(stack.url, "127.0.0.3") as other:
        statuses = [attacker.post("/jobs/demo", json=demo, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                    for i in range(8)]
        assert statuses == [202] * 5 + [429] * 3
        assert other.post("/jobs/demo", json=demo, headers={"X-Forwarded-For": "203.0.113.0"}).status_code == 202
    with client_from(stack.url, "127.0.0.1") as local:  # a local client is no proxy either
        statuses = [local.post("/jobs/demo", json=demo, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                    for i in range(6)]
        assert statuses == [202] * 5 + [429]


def test_ray_dashboard_is_local_and_refuses_unauthenticated_jobs(stack):
    listening = {c.laddr.ip for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == stack.dashboard_port}
    assert listening == {"127.0.0.1"}
    refused = httpx.post(f"{stack.dashboard}/api/jobs/", json={"entrypoint": "echo pwned"}, timeout=30)
    assert refused.status_code == 401


def listeners(port: int) -> set[tuple[str, str]]:
    found = set()
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            found.add((conn.laddr.ip, psutil.Process(conn.pid).name()))
    return found


def test_default_ingress_is_haproxy_on_localhost_with_two_replicas(stack):
    assert listeners(stack.port) == {("127.0.0.1", "haproxy")}
    replicas = [p for p in stack.descendants() if p.name().startswith("ray::ServeRepli")]
    assert len(replicas) == 2
    low, high = (int(stack.env[f"RAY_SERVE_DIRECT_INGRESS_{end}_HTTP_PORT"]) for end in ("MIN", "MAX"))
    for replica in replicas:  # their direct HTTP ports (HAProxy's backends) are on HOST too
        direct = [c.laddr for c in replica.net_connections("tcp")
                  if c.status == psutil.CONN_LISTEN and low <= c.laddr.port <= high]
        assert direct and {a.ip for a in direct} == {"127.0.0.1"}
    with open(stack.log_path, errors="replace") as log:
        assert "HTTP ingress   haproxy (SERVE_INGRESS), 2 replica(s)" in log.read()


def test_sigterm_stops_the_stack_cleanly(stack):
    state = stack.state()
    redis_port = int(state["redis_url"].rsplit(":", 1)[1].split("/")[0])
    processes = stack.descendants()
    assert any(p.name() == "raylet" for p in processes)
    haproxy = [p for p in processes if p.name() == "haproxy"]
    assert haproxy
    node_dirs = {d for d in os.listdir("/tmp/haproxy-serve")}
    assert stack.stop() == 0, stack.tail()
    _, alive = psutil.wait_procs(processes, timeout=20)
    assert not alive, [(p.pid, p.name()) for p in alive]
    assert not port_in_use("127.0.0.1", redis_port), "redis-server still listens"
    assert not port_in_use("127.0.0.1", stack.port), "HAProxy still listens"
    assert not (stack.env["DATA_DIR"] and os.path.exists(os.path.join(stack.env["DATA_DIR"], "stack.json")))
    left = set(os.listdir("/tmp/haproxy-serve")) if os.path.isdir("/tmp/haproxy-serve") else set()
    assert len(node_dirs - left) == 1, "the stack's HAProxy files were not removed"
