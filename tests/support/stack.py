"""A real service stack for tests: Ray (local) + Serve app on a free port, against a real Redis."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from cluster.ports import free_port
from compute.storage.keys import RedisKeys

REPO = Path(__file__).resolve().parents[2]
# Not the default, so the session's stack shows the setting reaches replicas, runner and tracker alike
# (a store built without it reads other keys: jobs would never run). Tests name its keys with STACK_KEYS.
KEY_PREFIX = "rayjobs-test:"
# The tests' kinds, and the README tutorial's example (tests/test_examples.py).
TEST_KIND_MODULES = "tests.support.kinds,examples.kinds.monte_carlo_pi"
# The test stacks' artifact store: one folder per test process, removed when it ends.
ARTIFACTS_DIR = tempfile.mkdtemp(prefix="rayjobs-artifacts-")
atexit.register(shutil.rmtree, ARTIFACTS_DIR, True)
STACK_KEYS = RedisKeys(KEY_PREFIX)


def stack_env(redis_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": KEY_PREFIX,
        "ENVIRONMENT": "test",
        "JWT_SECRET": "test-secret-" + "x" * 40,
        # the tests' own proxy address: the browser tests name a distinct client per test from there
        # (Chromium cannot pick its source address); every other client connects from its own address
        "TRUSTED_PROXIES": "127.0.0.1",
        "EXTRA_JOB_KIND_MODULES": TEST_KIND_MODULES,
        "RAY_NAMESPACE": "ray-jobs-test",
        # most tests need every job computed; the result cache has its own tests (test_result_cache.py)
        "RESULT_CACHE_SECONDS": "0",
        "ARTIFACT_STORE_URL": ARTIFACTS_DIR,
        "PYTHONPATH": str(REPO),
    }
    env.update(overrides)
    return env


def start_serve(port: int | None = None, replicas: int = 2) -> str:
    """The app as `make run` deploys it (two replicas); behind HAProxy when the session set it up."""
    from ray import serve

    from serve_app.deployment import build_app

    port = port or free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app({"num_replicas": replicas}), name="ray-jobs", route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base)
    return base


def wait_healthy(base: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = httpx.get(f"{base}/monitoring/health", timeout=5)
            if last.status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"service at {base} not healthy: {last!r}")


# What apply_env replaced: the value each variable had before (None: unset).
REPLACED_ENV: dict[str, str | None] = {}


def apply_env(env: dict[str, str]) -> None:
    for name in env:
        REPLACED_ENV.setdefault(name, os.environ.get(name))
    os.environ.update(env)


def environment_without_session() -> dict[str, str]:
    """This process's environment as it was before the session stack's settings were applied: a
    stack of its own (``LocalStackProcess``) must not inherit the session's Redis, secrets or issuer."""
    env = dict(os.environ)
    for name, before in REPLACED_ENV.items():
        if before is None:
            env.pop(name, None)
        else:
            env[name] = before
    return env
