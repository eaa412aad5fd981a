"""A Ray worker killed while it runs a chunk: Ray retries the chunk and the job ends exact."""

import os
import signal

from tests.support.jobs import chunk_worker_pids, wait_for_job, wait_until


def test_killed_chunk_worker_is_retried_and_result_is_exact(api, user):
    # a normal-priority job: its chunks run in worker processes of their own (a demo job's run on
    # the interactive lane, compute/scheduler.py)
    body = {"n": 6000, "chunks": 2, "kind": "sleepy_sum", "priority": "normal"}
    job_id = api.post("/jobs", json=body, headers=user["headers"]).json()["job_id"]
    pids = wait_until(lambda: chunk_worker_pids(job_id), "a chunk worker running")
    os.kill(pids[0], signal.SIGKILL)
    job = wait_for_job(api, f"/jobs/{job_id}", timeout=60, headers=user["headers"])
    assert job["status"] == "completed"
    assert job["result"] == 6000 * 6001 // 2
    chunks = api.get(f"/jobs/{job_id}/chunks", headers=user["headers"]).json()["chunks"]
    assert pids[0] not in {c["worker_pid"] for c in chunks}, "the killed worker cannot have reported a chunk"
