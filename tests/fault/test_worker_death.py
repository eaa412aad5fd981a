"""A Ray worker killed while it runs a chunk: Ray retries the chunk and the job ends exact."""

import os
import signal

from tests.support.jobs import chunk_worker_pids, wait_for_job, wait_until


def test_killed_chunk_worker_is_retried_and_result_is_exact(api):
    job_id = api.post("/jobs/demo", json={"n": 6000, "chunks": 2, "kind": "sleepy_sum"}).json()["job_id"]
    pids = wait_until(lambda: chunk_worker_pids(job_id), "a chunk worker running")
    os.kill(pids[0], signal.SIGKILL)
    job = wait_for_job(api, f"/jobs/demo/{job_id}", timeout=60)
    assert job["status"] == "completed"
    assert job["result"] == 6000 * 6001 // 2
    chunks = api.get(f"/jobs/demo/{job_id}/chunks").json()["chunks"]
    assert pids[0] not in {c["worker_pid"] for c in chunks}, "the killed worker cannot have reported a chunk"
