"""Shared fixtures: one real redis-server and one real Ray instance (with the Serve app) per session."""

from __future__ import annotations

import itertools
import uuid

import httpx
import pytest

from cluster.redis_process import RedisProcess
from tests.support.coverage_workers import stop_workers_gracefully
from tests.support.jwks import JwksServer, jwk
from tests.support.stack import apply_env, stack_env, start_serve

_ips = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def identity_provider():
    """An external OpenID provider's signing key, published as a JWKS the stack trusts."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = JwksServer({"keys": [jwk(key.public_key(), "idp-1", "RS256")]}).start()
    yield {"key": key, "kid": "idp-1", "jwks_url": server.url}
    server.stop()


@pytest.fixture(scope="session")
def ray_session(redis_url, identity_provider):
    """A local Ray instance whose workers see the same settings as the app."""
    import ray

    env = stack_env(redis_url, JWT_JWKS_URL=identity_provider["jwks_url"])
    apply_env(env)
    # Workers inherit the settings from this process's environment. (Passing them as runtime_env
    # env_vars would write JWT_SECRET into Ray's runtime-env agent log.)
    ray.init(num_cpus=4, include_dashboard=False, namespace=env["RAY_NAMESPACE"], logging_level="WARNING",
             _system_config={"metrics_report_interval_ms": 1000})
    yield env
    stop_workers_gracefully()
    ray.shutdown()


@pytest.fixture(scope="session")
def base_url(ray_session) -> str:
    return start_serve()


def fresh_ip() -> str:
    """A distinct client address per test (the stack trusts 127.0.0.1 as a proxy), so rate-limit
    buckets never leak between tests."""
    n = next(_ips)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@pytest.fixture
def client_ip() -> str:
    return fresh_ip()


@pytest.fixture
def api(base_url, client_ip):
    with httpx.Client(base_url=base_url, headers={"X-Forwarded-For": client_ip}, timeout=30) as client:
        yield client


@pytest.fixture
def user(api):
    """A registered, logged-in user: (email, password, headers)."""
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery"
    assert api.post("/auth/register", json={"email": email, "password": password}).status_code == 201
    token = api.post("/auth/login", json={"email": email, "password": password}).json()["access_token"]
    return {"email": email, "password": password, "headers": {"Authorization": f"Bearer {token}"}}


def pytest_configure(config):
    config.addinivalue_line("markers", "last: run after every other test (audits of the whole session)")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
