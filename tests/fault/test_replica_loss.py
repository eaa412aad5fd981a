"""The Serve replica is killed: Serve starts a new one, requests meanwhile fail fast (never hang),
and jobs in flight complete, because they run in the runner actor, not in the replica."""

import os
import signal
import time

import httpx
import psutil

from tests.support.jobs import wait_for_job


def replica_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [""])[0].startswith("ray::ServeReplica:ray-jobs:ApiGateway")]


def test_killed_replica_is_replaced_and_jobs_in_flight_complete(api, base_url):
    job_id = api.post("/jobs/demo", json={"n": 6000, "chunks": 2, "kind": "sleepy_sum"}).json()["job_id"]
    pids = replica_pids()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    statuses, slowest = [], 0.0
    while time.time() - killed_at < 90:
        started = time.time()
        try:
            status = httpx.get(f"{base_url}/monitoring/health", timeout=10).status_code
        except httpx.TransportError as exc:
            status = type(exc).__name__
        slowest = max(slowest, time.time() - started)
        statuses.append(status)
        if status == 200 and replica_pids() and set(replica_pids()) != set(pids):
            break
        time.sleep(0.2)
    outage = time.time() - killed_at
    print(f"replica outage {outage:.1f} s; answers {sorted(set(map(str, statuses)))}; slowest {slowest:.2f} s")
    assert statuses[-1] == 200, statuses[-10:]
    assert slowest < 10, "a request hung during the outage"
    assert set(statuses) <= {200, 500, 502, 503, "ConnectError", "RemoteProtocolError", "ReadError"}
    job = wait_for_job(api, f"/jobs/demo/{job_id}", timeout=60)
    assert job["status"] == "completed" and job["result"] == 6000 * 6001 // 2
