"""Browser tests: Debian's Chromium driven by Playwright against the real stack (Ray + Serve + Redis).

The stack comes from the session fixture ``base_url`` in tests/conftest.py. Set E2E_BASE_URL to run
against a stack that is already up (for example `python -m cluster up` with
EXTRA_JOB_KIND_MODULES=tests.support.kinds and TRUSTED_PROXIES=127.0.0.1).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import fresh_ip

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"

expect.set_options(timeout=10_000)  # the machine may be busy: wait longer before failing an expectation


@pytest.fixture(scope="session")
def server(request) -> str:
    return os.environ.get("E2E_BASE_URL") or request.getfixturevalue("base_url")


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def client_ip() -> str:
    """A client address of its own; against an outside stack (whose Redis remembers earlier runs) a random one."""
    if os.environ.get("E2E_BASE_URL"):
        return f"10.{random.randrange(100, 250)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    return fresh_ip()


def new_context(browser: Browser, server: str, **options) -> BrowserContext:
    """A fresh browser profile with its own client IP (so rate limits never leak between tests)."""
    options.setdefault("viewport", {"width": 1280, "height": 900})
    context = browser.new_context(base_url=server, extra_http_headers={"X-Forwarded-For": client_ip()}, **options)
    context.set_default_timeout(15_000)
    return context


class PageProblems:
    """Uncaught script errors and CSP violations seen by a page; a test fails if any appear."""

    def __init__(self):
        self.items: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda error: self.items.append(f"pageerror: {error}"))
        page.on("console", lambda message: self.items.append(f"console: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text else None)
        return page


@pytest.fixture
def context(browser, server):
    context = new_context(browser, server)
    yield context
    context.close()


@pytest.fixture
def page(context):
    problems = PageProblems()
    page = problems.watch(context.new_page())
    yield page
    assert not problems.items, problems.items


def csrf_token(context: BrowserContext) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "csrf_token")


def sign_up(context: BrowserContext) -> str:
    """Register a new user and start a cookie session in this context (through the API)."""
    email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    response = context.request.post("/auth/register", data={"email": email, "password": PASSWORD})
    assert response.status == 201, response.text()
    response = context.request.post("/auth/session", data={"email": email, "password": PASSWORD})
    assert response.status == 200, response.text()
    return email


def submit_job(context: BrowserContext, n: int, chunks: int, kind: str = "range_sum") -> str:
    response = context.request.post("/jobs", data={"n": n, "chunks": chunks, "kind": kind},
                                    headers={"X-CSRF-Token": csrf_token(context)})
    assert response.status == 202, response.text()
    return response.json()["job_id"]


def wait_job(context: BrowserContext, job_id: str, timeout: float = 60,
             until: tuple[str, ...] = ("completed", "failed", "cancelled")) -> dict:
    """The job once its status is one of `until` (by default: finished); fails with its last state."""
    deadline = time.monotonic() + timeout
    while True:
        response = context.request.get(f"/jobs/{job_id}")
        assert response.status == 200, f"GET /jobs/{job_id}: {response.status} {response.text()}"
        job = response.json()
        if job["status"] in until:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not {' or '.join(until)} after {timeout} s: {job}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def seeded(browser, server):
    """One signed-in user with a varied history: a big exact result, a failure, a cancellation."""
    context = new_context(browser, server)
    email = sign_up(context)
    big = submit_job(context, 150_000_000, 8)  # result 11,250,000,075,000,000 > 2**53
    primes = submit_job(context, 100_000, 4, "prime_count")
    failed = submit_job(context, 400, 4, "explode")
    cancelled = submit_job(context, 60_000, 2, "sleepy_sum")
    wait_job(context, cancelled, until=("running",))  # cancelled while it runs, not before it starts
    response = context.request.delete(f"/jobs/{cancelled}", headers={"X-CSRF-Token": csrf_token(context)})
    assert response.status == 200, response.text()
    for job_id in (big, primes, failed):
        wait_job(context, job_id)
    token = context.request.post("/me/tokens", data={"name": "ci"}, headers={"X-CSRF-Token": csrf_token(context)})
    assert token.status == 201
    yield {"context": context, "email": email, "big": big, "primes": primes, "failed": failed, "cancelled": cancelled}
    context.close()
