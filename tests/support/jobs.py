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
