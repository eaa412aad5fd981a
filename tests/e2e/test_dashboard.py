"""Accounts and the dashboard: register, sign in/out, submit, live rows, tokens, cancel, job detail."""

import asyncio
import concurrent.futures
import os
import re
import subprocess
import uuid
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, csrf_token, sign_up, submit_job, wait_job


def row(page, job_id):
    return page.locator(f'tr[data-job-id="{job_id}"]')


def test_register_sign_in_submit_and_watch_live(page):
    # Signed out, the dashboard sends you to sign in, and back afterwards.
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fdashboard$"))
    expect(page.locator("#auth-notice")).to_have_text("Please sign in to continue.")
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(re.compile(r"/register\?next=%2Fdashboard$"))
    page.wait_for_load_state()  # the page's module has attached its handlers

    # Inline validation before anything is sent.
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#email-error")).to_have_text("Enter your email address.")
    expect(page.get_by_label("Email")).to_be_focused()
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#email-error")).to_contain_text("valid email")
    expect(page.locator("#password-error")).to_have_text("Use at least 8 characters (5 so far).")

    email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("#dash-email")).to_have_text(email)
    expect(page.locator("#jobs-body")).to_contain_text("No jobs yet")

    # The server's message for a duplicate account, then sign out through the user menu.
    page.get_by_role("button", name=re.compile("account menu")).click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    assert page.request.get("/me").status == 401
    page.goto("/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#email-error")).to_have_text("An account with this email already exists.")

    # Sign in: a wrong password gets the server's answer in words, the right one the dashboard.
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))

    # Submit through the form; the row appears and finishes with the exact result.
    page.evaluate("window.__noReload = true")
    page.get_by_label("n", exact=True).fill("2000000")
    page.get_by_label("Chunks").fill("4")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator(".toast").first, "the job was not accepted").to_contain_text("submitted", timeout=30_000)
    expect(page.locator("#job-form-error")).to_be_hidden()
    first = page.locator("#jobs-body tr").first
    expect(first.get_by_role("cell").nth(7)).to_have_text("2,000,001,000,000", timeout=30_000)
    expect(first.locator(".badge")).to_have_text("completed")

    # A slow job (a test-only kind: the select lists what GET /kinds lists): running, then completed — live, no reload.
    page.locator("#job-kind").select_option("sleepy_sum")
    page.get_by_label("n", exact=True).fill("10000")  # two chunks of 5,000 numbers: ~5 s running
    page.get_by_label("Chunks").fill("2")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#jobs-body tr")).to_have_count(2)
    live = page.locator("#jobs-body tr").first
    expect(live.locator(".badge")).to_have_text("running", timeout=20_000)
    expect(live.get_by_role("button", name=re.compile("^Cancel job"))).to_be_visible()
    expect(live.locator(".badge")).to_have_text("completed", timeout=30_000)
    expect(live.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(live.get_by_role("cell").nth(7)).to_have_text("50,005,000")
    expect(live.get_by_role("link", name=re.compile("^View job"))).to_be_visible()
    assert page.evaluate("window.__noReload") is True
    expect(page.locator("#stat-total")).to_have_text("2")
    expect(page.locator("#stat-completed")).to_have_text("2")


def test_api_tokens_create_copy_use_and_revoke(page, context, server):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    sign_up(context)
    page.goto("/dashboard")
    expect(page.locator("#token-list")).to_have_text("No tokens yet.")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#token-name-error")).to_contain_text("Give the token a name")

    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-new-value")
    expect(secret).to_have_text(re.compile(r"^rjt_"))
    token = secret.inner_text()
    expect(page.locator("#token-list")).to_contain_text("laptop")

    copy = page.locator("#token-new .copy-btn")
    expect(copy).to_have_accessible_name("Copy")
    copy.click()
    expect(copy).to_have_text("Copied!")
    assert page.evaluate("navigator.clipboard.readText()") == token
    expect(copy).to_have_text("Copy", timeout=5000)

    # The example uses this server and the new token, and it works as written.
    example = page.locator("#token-curl").inner_text()
    assert f"{server}/jobs" in example and token in example
    result = subprocess.run(["bash", "-c", example.replace("curl -X", "curl -s -o /dev/null -w '%{http_code}' -X", 1)
                             + f" -H 'X-Forwarded-For: 10.250.{uuid.uuid4().int % 250}.1'"],
                            check=False, capture_output=True, text=True, timeout=30)
    assert result.stdout == "202", result

    page.get_by_role("button", name="Revoke token laptop").click()
    dialog = page.get_by_role("dialog", name="Revoke this token?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.locator("#token-list")).to_have_text("No tokens yet.")
    expect(page.locator("#token-new")).to_be_hidden()
    assert page.request.get("/me", headers={"Authorization": f"Bearer {token}"}).status == 401


def test_cancel_a_long_job(page, context):
    sign_up(context)
    job_id = submit_job(context, 120_000, 2, "sleepy_sum")  # a minute per chunk
    others = [submit_job(context, 120_000, 1, "sleepy_sum") for _ in range(3)]
    try:
        page.goto("/dashboard")
        # A fifth active job is refused; the server's reason is shown in words.
        page.get_by_role("button", name="Submit job").click()
        expect(page.locator("#job-form-error")).to_contain_text("You already have 4 active jobs")
        expect(page.locator("#job-form-error")).not_to_contain_text("{")

        line = row(page, job_id)
        expect(line.locator(".badge")).to_have_text(re.compile("pending|running"))
        line.get_by_role("button", name=re.compile("^Cancel job")).click()
        dialog = page.get_by_role("dialog", name="Cancel this job?")
        dialog.get_by_role("button", name="Keep running").click()
        expect(dialog).to_be_hidden()
        expect(line.locator(".badge")).not_to_have_text("cancelled")

        line.get_by_role("button", name=re.compile("^Cancel job")).click()
        page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
        expect(line.locator(".badge")).to_have_text("cancelled")
        expect(line.get_by_role("button", name=re.compile("^Cancel job"))).to_have_count(0)
        expect(page.locator(".toast").first).to_contain_text("cancelled")
        assert page.request.get(f"/jobs/{job_id}").json()["status"] == "cancelled"
    finally:
        for other in others:
            context.request.delete(f"/jobs/{other}", headers={"X-CSRF-Token": csrf_token(context)})
    expect(row(page, others[0]).locator(".badge")).to_have_text("cancelled")  # followed live over SSE
    page.get_by_label("Status").select_option("cancelled")
    expect(page.locator("#jobs-body tr")).to_have_count(4)
    page.get_by_label("Status").select_option("completed")
    expect(page.locator("#jobs-body")).to_have_text("No completed jobs.")


def test_history_pages(page, context):
    sign_up(context)
    for i in range(11):  # 11 tiny jobs; each from its own address, past the 10/minute limit
        response = context.request.post("/jobs", data={"n": 10 + i, "chunks": 1},
                                        headers={"X-CSRF-Token": csrf_token(context),
                                                 "X-Forwarded-For": f"10.251.{uuid.uuid4().int % 250}.{i + 1}"})
        assert response.status == 202, response.text()
        wait_job(context, response.json()["job_id"])
    page.goto("/dashboard")
    expect(page.locator("#page-info")).to_have_text("Showing 1–10 of 11")
    expect(page.locator("#jobs-body tr")).to_have_count(10)
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#page-info")).to_have_text("Showing 11–11 of 11")
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    expect(page.locator("#jobs-body tr").first.get_by_role("cell").nth(3)).to_have_text("10")  # the oldest
    expect(page.get_by_role("button", name="Next")).to_be_disabled()


def test_a_list_read_before_a_job_ended_does_not_bring_it_back_to_running(page, context):
    """The list is re-read (a filter, a page, a job from elsewhere) while the stream reports a job's
    end: if that read was answered before the end, the row must still say how the job ended."""
    sign_up(context)
    page.goto("/dashboard")
    job_id = submit_job(context, 6_000, 1, "sleepy_sum")  # about 6 s
    page.get_by_label("Status").select_option("running")
    expect(row(page, job_id).locator(".badge")).to_have_text("running")

    held = []
    page.route(lambda url: urlparse(url).path == "/jobs" and "limit=" in url,
               lambda route: held.append((route, route.fetch())), times=1)  # read now, answered later
    page.get_by_label("Status").select_option("")
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    route, stale = held[0]
    assert {job["job_id"]: job["status"] for job in stale.json()["items"]}[job_id] == "running"
    expect(row(page, job_id).locator(".badge")).to_have_text("completed", timeout=30_000)  # told by the stream
    with page.expect_response(lambda r: r.request == route.request):
        route.fulfill(response=stale)  # then the list read before the end arrives
    page.wait_for_function("() => !document.querySelector('#jobs-body').hasAttribute('aria-busy')")
    expect(row(page, job_id).locator(".badge")).to_have_text("completed")
    expect(row(page, job_id).get_by_role("cell").nth(7)).to_have_text(f"{sum(range(1, 6_001)):,}")


def test_job_detail_timeline(page, seeded):
    context, big = seeded["context"], seeded["big"]
    page.close()
    page = context.new_page()
    page.goto(f"/dashboard/jobs/{big}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {big[:8]}")
    expect(page.locator("#job-badge")).to_have_text("completed")
    expect(page.locator("#f-result")).to_have_text("11,250,000,075,000,000")  # > 2**53, exact
    expect(page.locator("#f-n")).to_have_text("150,000,000")
    expect(page.get_by_role("progressbar", name="Job progress")).to_have_attribute("aria-valuenow", "100")

    bars = page.locator(".timeline-bar")
    expect(bars).to_have_count(8)
    chart = page.get_by_role("img", name=re.compile("^Chunk timeline"))
    expect(chart).to_be_visible()
    assert re.search(r"8 of 8 chunks ran on \d+ nodes? in \d+ worker process", chart.get_attribute("aria-label"))
    title = bars.first.get_attribute("title")
    assert re.search(r"Chunk #\d+ \([\d,]+–[\d,]+\)", title) and "pid " in title and "node " in title
    assert all(bars.nth(i).get_attribute("data-node") for i in range(8))
    widths = [bars.nth(i).evaluate("b => b.getBoundingClientRect().width") for i in range(8)]
    assert all(w > 0 for w in widths)

    table = page.get_by_role("table", name=re.compile("Chunks of job"))
    expect(table.locator("tbody tr")).to_have_count(8)
    expect(table.locator("tbody tr").first.get_by_role("cell").nth(1)).to_have_text("1–18,750,000")
    expect(table.locator("tbody tr").first.get_by_role("cell").nth(4)).to_have_text(re.compile(r"^\d+$"))

    page.goto(f"/dashboard/jobs/{seeded['failed']}")
    expect(page.locator("#job-badge")).to_have_text("failed")
    expect(page.locator("#f-detail")).not_to_have_text("—")

    page.goto("/dashboard/jobs/00000000-0000-4000-8000-000000000000")
    expect(page.get_by_role("heading", level=1)).to_have_text("Job not found")
    page.close()


def test_dashboard_lists_the_seeded_history(page, seeded):
    page.close()
    page = seeded["context"].new_page()
    page.goto("/dashboard")
    expect(row(page, seeded["big"]).get_by_role("cell").nth(7)).to_have_text("11,250,000,075,000,000")
    expect(row(page, seeded["failed"]).locator(".badge")).to_have_text("failed")
    expect(row(page, seeded["cancelled"]).locator(".badge")).to_have_text("cancelled")
    expect(page.locator("#stat-total")).to_have_text("4")
    expect(page.locator("#stat-failed")).to_have_text("1")
    expect(page.locator("#stat-avg")).not_to_have_text("—")
    page.close()


def test_eight_running_jobs_stay_live_over_one_stream(page, context, request):
    """More unfinished jobs than a browser's ~6 connections per origin: one EventSource
    (`/jobs/events`) keeps every row live; no per-job streams."""
    if os.environ.get("E2E_BASE_URL"):
        pytest.skip("writes the jobs through the session's own Redis and Ray")
    import ray

    from compute.config import JobLimits
    from compute.runner import get_runner
    from compute.storage.jobs import JobStore
    from compute.submission import JobRequest, prepare
    from tests.support.stack import KEY_PREFIX

    redis_url = request.getfixturevalue("redis_url")
    sign_up(context)
    owner = context.request.get("/me").json()["user_id"]
    # More than MAX_ACTIVE_JOBS_PER_USER (4) lets one submit over HTTP: stored as a higher limit would.
    records = [prepare(owner, JobRequest("sleepy_sum", {"n": 3_000}, 2), JobLimits(10**12, 10**6)).record
               for _ in range(8)]

    async def store_jobs():
        store = JobStore(redis_url, key_prefix=KEY_PREFIX)
        try:
            for record in records:
                assert await store.create_job(record, index_owner=True, max_active=0)
        finally:
            await store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, store_jobs()).result()
    streams = []
    page.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
    page.goto("/dashboard")
    expect(page.locator("#jobs-body tr")).to_have_count(8)
    page.evaluate("""() => {
        window.__noReload = true;
        window.__seen = {};
        const note = (row) => (window.__seen[row.dataset.jobId] ??= new Set()).add(row.dataset.status);
        document.querySelectorAll('#jobs-body tr').forEach(note);
        const isRow = (node) => node.matches?.('tr[data-job-id]');
        new MutationObserver((changes) => changes.forEach((c) => {
            if (c.type === 'childList') c.addedNodes.forEach((n) => isRow(n) && note(n));
            else if (isRow(c.target)) note(c.target);
        })).observe(document.querySelector('#jobs-body'),
                    {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
    }""")
    runner = get_runner()
    ray.get([runner.submit.remote(r.job_id) for r in records])
    for record in records:
        line = row(page, record.job_id)
        expect(line.locator(".badge")).to_have_text("completed", timeout=60_000)
        expect(line.get_by_role("cell").nth(7)).to_have_text("4,501,500")
        expect(line.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    seen = page.evaluate("Object.fromEntries(Object.entries(window.__seen).map(([k, v]) => [k, [...v]]))")
    for record in records:
        assert {"pending", "running", "completed"} <= set(seen[record.job_id]), seen
    assert page.evaluate("window.__noReload") is True
    assert [url.split("/", 3)[-1] for url in streams] == ["jobs/events"], streams


def test_job_page_applies_chunk_updates_without_rereading_all(page, context):
    """The timeline grows from the stream's `chunks` events; `/chunks` is read on load, once when
    the stream connects (resync) and once at the end — not per event."""
    sign_up(context)
    job_id = submit_job(context, 16_000, 16, "sleepy_sum")  # 16 chunks of ~1 s on 4 CPUs: ~4 waves
    reads = []
    page.on("request", lambda r: reads.append(r.url) if r.url.endswith(f"/jobs/{job_id}/chunks") else None)
    page.goto(f"/dashboard/jobs/{job_id}")
    expect(page.locator("#job-view")).to_be_visible()
    page.evaluate("""() => {
        window.__bars = [];
        new MutationObserver(() => window.__bars.push(document.querySelectorAll('.timeline-bar').length))
            .observe(document.querySelector('#timeline'), {childList: true, subtree: true});
    }""")
    expect(page.locator("#job-badge")).to_have_text("completed", timeout=60_000)
    expect(page.locator(".timeline-bar")).to_have_count(16)
    counts = sorted(set(page.evaluate("window.__bars")))
    assert [c for c in counts if 0 < c < 16], f"the timeline never showed part of the chunks: {counts}"
    assert len(reads) <= 3, f"/chunks read {len(reads)} times"
