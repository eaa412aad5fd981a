"""Clients of the live stack for the client's tests, each from the test's own loopback address."""

from __future__ import annotations

import httpx
import pytest

from client import Client


@pytest.fixture
def token(user) -> str:
    return user["headers"]["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def jobs(base_url, client_ip, token):
    with Client(base_url, token, transport=httpx.HTTPTransport(local_address=client_ip)) as client:
        yield client


@pytest.fixture
def demo(base_url, client_ip):
    with Client(base_url, transport=httpx.HTTPTransport(local_address=client_ip)) as client:
        yield client
