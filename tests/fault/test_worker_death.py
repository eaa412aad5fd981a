"""A Ray worker killed while it runs a chunk: Ray retries the chunk and the job ends exact."""

import os
import signal
import time

import psutil

from tests.support.jobs import wait_for_job


def chunk_worker_pids(job_id: str) -> list[int]:
    """Workers whose process title says they are running one of this job's chunks."""
    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        title = (proc.info["cmdline"] or [""])[0]
        if title.startswith(f"ray::chunk:{job_id}"):
            pids.append(proc.pid)
    return pids


def test_killed_chunk_worker_is_retried_and_result_is_exact(api):
    job_id = api.post("/jobs/demo", json={"n": 6000, "chunks": 2, "kind": "sleepy_sum"}).json()["job_id"]
    deadline = time.time() + 30
    while not (pids := chunk_worker_pids(job_id)):
        assert time.time() < deadline, "no chunk worker appeared"
        time.sleep(0.05)
    os.kill(pids[0], signal.SIGKILL)
    job = wait_for_job(api, f"/jobs/demo/{job_id}", timeout=60)
    assert job["status"] == "completed"
    assert job["result"] == 6000 * 6001 // 2
    chunks = api.get(f"/jobs/demo/{job_id}/chunks").json()["chunks"]
    assert pids[0] not in {c["worker_pid"] for c in chunks}, "the killed worker cannot have reported a chunk"
