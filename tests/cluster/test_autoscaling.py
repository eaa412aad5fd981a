"""Autoscaling in simulation: Ray's fake multi-node provider adds real (local) raylets on demand.

A head with 0 CPUs is started with ``ray start --autoscaling-config`` (the recipe in the team's Ray notes;
``AutoscalingCluster`` is unusable: it needs a file the wheel does not ship and runs ``ray stop --force``).
A job whose chunks each need one CPU can only run once the autoscaler has added worker nodes; when the
job is done the idle workers must be removed again after ``idle_timeout_minutes``.

Everything this test starts lives under a private temp dir (``--temp-dir`` and ``RAY_TMPDIR``) and is
stopped by PID at the end: the processes whose command line or environment names that dir. No
``ray stop``, which would kill every Ray process on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

from cluster.ports import free_port
from cluster.redis_process import RedisProcess
from tests.support.processes import processes_of

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")
NAMESPACE = "ray-jobs-autoscaling"
MAX_WORKERS = 2


def fake_cluster_config(gcs_address: str) -> dict:
    empty_lists = ("cluster_synced_files", "rsync_exclude", "rsync_filter", "initialization_commands",
                   "setup_commands", "head_setup_commands", "worker_setup_commands", "head_start_ray_commands",
                   "worker_start_ray_commands")
    return {
        "cluster_name": "rj-fake",
        "max_workers": MAX_WORKERS,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 0.1,  # 6 s; the notes use 0.2 - shorter keeps the test fast
        "provider": {
            "type": "fake_multinode",
            "gcs_address": gcs_address,  # without it the fake nodes dial port 6379
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "launch_multiple": True,  # start all the nodes a scale-up asks for at once
        },
        "auth": {"ssh_user": "ubuntu"},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "ray.worker.cpu": {"resources": {"CPU": 1, "object_store_memory": 100 * 1024 * 1024},
                               "node_config": {}, "min_workers": 0, "max_workers": MAX_WORKERS},
        },
        "head_node_type": "ray.head.default",
        "file_mounts": {},
        "file_mounts_sync_continuously": False,
        **{key: [] for key in empty_lists},
    }


def stop_processes(tmp_dir: str, grace: float = 5) -> list[int]:
    procs = processes_of(tmp_dir)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    return [p.pid for p in procs]


@pytest.fixture
def fake_autoscaling_head():
    import ray._private.services

    tmp_dir = tempfile.mkdtemp(prefix="rj-as-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    redis = RedisProcess(Path(tmp_dir) / "redis", appendonly=False).start()
    port = free_port()
    gcs_address = f"{ray._private.services.get_node_ip_address()}:{port}"
    config = Path(tmp_dir) / "fake.yaml"
    config.write_text(yaml.safe_dump(fake_cluster_config(gcs_address)))
    env = {
        **os.environ,
        "RAY_TMPDIR": tmp_dir,
        "RAY_FAKE_CLUSTER": "1",
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",
        # token auth on for the head, the fake nodes (the autoscaler inherits this env) and the driver
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        # settings every worker inherits from its raylet
        "REDIS_URL": redis.url,
        "RAY_NAMESPACE": NAMESPACE,
        "EXTRA_JOB_KIND_MODULES": "tests.support.kinds",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.pop("RAY_ADDRESS", None)
    timings = {}
    t0 = time.monotonic()
    try:
        subprocess.run(
            [RAY, "start", "--head", "--num-cpus=0", f"--port={port}", f"--temp-dir={tmp_dir}/ray",
             f"--autoscaling-config={config}", "--include-dashboard=false", "--dashboard-agent-listen-port=0",
             f"--ray-client-server-port={free_port()}", "--disable-usage-stats"],
            env=env, check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        timings["head_start_s"] = round(time.monotonic() - t0, 1)
        yield {"env": {**env, "RAY_ADDRESS": gcs_address}, "tmp_dir": tmp_dir, "timings": timings}
    finally:
        t0 = time.monotonic()
        stop_processes(tmp_dir)
        timings["stop_s"] = round(time.monotonic() - t0, 1)
        print(f"fake autoscaling head: {timings}")
        redis.stop()
        leftovers = processes_of(tmp_dir)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        assert not leftovers, f"processes left behind: {[p.pid for p in leftovers]}"


def test_workers_are_added_for_a_job_and_removed_when_idle(fake_autoscaling_head):
    started = time.monotonic()
    n, chunks = 3000, 2  # 2 chunks of 1.5 s each, one CPU each; the head has none
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "cluster" / "autoscaling_driver.py"),
                           "--n", str(n), "--chunks", str(chunks), "--timeout", "120", "--idle-wait", "60"],
                          env=fake_autoscaling_head["env"], cwd=REPO, capture_output=True, text=True, timeout=240)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"driver failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    out = json.loads(lines[-1])
    timeline = "\n".join(f"  {t:6.1f}s  workers alive={count}  {event}" for t, count, event in out["timeline"])
    report = (f"autoscaling timeline (s since the job was submitted - 'start' is before):\n{timeline}\n"
              f"head started in {fake_autoscaling_head['timings']['head_start_s']} s; "
              f"driver total {time.monotonic() - started:.0f} s")
    print(report)  # shown by pytest -rA
    assert out["status"] == "completed", report
    assert out["result"] == out["expected"] == n * (n + 1) // 2, report
    # nothing could run before the autoscaler added workers: the head offers 0 CPUs
    assert out["timeline"][0][1] == 0, report
    # workers were added on demand (not a bound on their number: on an overloaded machine the autoscaler
    # has been seen to start a replacement for a slow node and drop it again within a second)
    assert len(out["workers_seen"]) >= 1 and out["max_workers_seen"] >= 1, report
    assert set(out["chunk_nodes"]) <= set(out["workers_seen"]), report
    # the idle workers were removed again
    assert out["workers_left"] == [], report
    assert out["timeline"][-1][1] == 0 and out["timeline"][-1][2] == "all idle workers removed", report
