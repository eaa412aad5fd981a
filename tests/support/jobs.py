"""Small helpers to drive jobs over HTTP in tests."""

import time

import httpx

TERMINAL = {"completed", "failed", "cancelled"}


def wait_for_job(client: httpx.Client, path: str, timeout: float = 60, **kwargs) -> dict:
    deadline = time.time() + timeout
    while True:
        response = client.get(path, **kwargs)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        body = response.json()
        if body.get("status") in TERMINAL:
            return body
        if time.time() > deadline:
            raise AssertionError(f"job at {path} not finished after {timeout} s: {body}")
        time.sleep(0.05)


def chunk_worker_pids(job_id: str) -> list[int]:
    """Ray workers running one of this job's chunks right now (their title is
    ``ray::chunk:<job>:<index>`` while a chunk runs, compute/tasks.py)."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        if (proc.info["cmdline"] or [""])[0].startswith(f"ray::chunk:{job_id}:"):
            pids.append(proc.pid)
    return pids


def wait_until(condition, what: str, timeout: float = 30, interval: float = 0.05):
    """Poll ``condition`` until it returns something true (returned); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout} s")
        time.sleep(interval)
    return value
