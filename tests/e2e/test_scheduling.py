"""Scheduling in the browser: the submit form's priority, priority tags, a queued job's place and what
it waits for (live, on the dashboard and the job page), and the "Queued chunks" cluster card.

A job really waits only when the chunk slots are full: the session stack's in-flight budget is a
small multiple of its CPUs (of chunks that run ~1 s, twice its CPUs), so one user's big ``sleepy_sum`` job
(1 ms per number, high priority, so a low job waits two aging periods) keeps every slot busy for
several seconds while another job queues. The
big job is cancelled at the end of each test, so later tests find the slots free."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import csrf_token, new_context, sign_up, wait_job
from tests.e2e.test_workloads import check_a11y, post_job

# 80 chunks of ~1 s each (too many for the interactive lane): on the stack's 4 CPUs it keeps every slot busy for
# well over ten seconds; a low job waits 2 × SCHEDULER_AGING_SECONDS (20 s) at most behind it.
FILLER = {"kind": "sleepy_sum", "n": 80_000, "chunks": 80, "priority": "high"}
QUEUED = re.compile(r"^Queued · #\d+$")
WAITS_FOR = re.compile(r"^Queued: (next to start|[\d,]+ chunks? of other jobs wait ahead of it) "
                       r"\(\d+ of \d+ chunk slots busy\)\.$")


def changes_twice(detail) -> None:
    """The text changes, then changes again, without a reload: as the chunks ahead of a queued job
    drain, its record says so about once a second (a stream's first record alone is one change)."""
    seen = [detail.inner_text()]
    for _ in range(2):
        expect(detail).not_to_have_text(re.compile("^(" + "|".join(map(re.escape, seen)) + ")$"), timeout=8_000)
        seen.append(detail.inner_text())
    expect(detail).to_have_text(WAITS_FOR)


def row(page, job_id):
    return page.locator(f'tr[data-job-id="{job_id}"]')


def cancel(context, job_id: str) -> None:
    response = context.request.delete(f"/jobs/{job_id}", headers={"X-CSRF-Token": csrf_token(context)})
    assert response.status in (200, 409), response.text()  # 409: it had already ended


@pytest.fixture
def filler(browser, server):
    """Another user whose big high-priority job fills every chunk slot (cancelled afterwards)."""
    context = new_context(browser, server)
    sign_up(context)
    jobs = [post_job(context, FILLER)]
    wait_job(context, jobs[0], until=("running",))
    yield {"context": context, "jobs": jobs}
    for job_id in jobs:
        cancel(context, job_id)
    context.close()


def test_submit_with_a_priority_from_the_form(page, context):
    sign_up(context)
    page.goto("/dashboard")
    priority = page.get_by_label("Priority")
    expect(priority).to_have_value("normal")
    expect(priority).to_have_accessible_description(re.compile("chunk slots first"))
    assert [o.strip() for o in priority.locator("option").all_text_contents()] == ["Normal", "High", "Low"]

    page.get_by_label("n", exact=True).fill("3000")
    page.get_by_label("Chunks").fill("2")
    priority.select_option("low")
    with page.expect_request(lambda r: r.url.endswith("/jobs") and r.method == "POST") as sent:
        page.get_by_role("button", name="Submit job").click()
    assert sent.value.post_data_json["priority"] == "low", sent.value.post_data_json
    low = sent.value.response().json()["job_id"]
    expect(row(page, low).locator(".priority-tag")).to_have_text("low priority")
    expect(row(page, low).locator(".priority-tag")).to_be_visible()
    expect(row(page, low)).to_have_attribute("data-priority", "low")
    assert context.request.get(f"/jobs/{low}").json()["priority"] == "low"

    # The choice goes with every kind's body; normal (the default) stays quiet.
    page.locator("#job-kind").select_option("prime_count")
    tags = {}
    for choice in ("high", "normal"):
        priority.select_option(choice)
        with page.expect_request(lambda r: r.url.endswith("/jobs") and r.method == "POST") as sent:
            page.get_by_role("button", name="Submit job").click()
        assert sent.value.post_data_json["priority"] == choice and "params" in sent.value.post_data_json
        tags[choice] = row(page, sent.value.response().json()["job_id"]).locator(".priority-tag")
    expect(tags["high"]).to_have_text("high priority")
    expect(tags["high"]).to_be_visible()
    expect(tags["normal"]).to_be_attached()
    expect(tags["normal"]).to_be_hidden()

    # At 360 px the field fits the screen.
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto("/dashboard")
    # The form is built from GET /kinds after load; bounding_box() does not wait for it.
    expect(page.get_by_label("Priority")).to_be_visible()
    box = page.get_by_label("Priority").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
    check_a11y(page, "dashboard-priority-form")


def test_a_queued_job_on_the_dashboard_shows_its_place_live(page, context, filler):
    sign_up(context)
    job_id = post_job(context, {"kind": "sleepy_sum", "n": 2_000, "chunks": 2, "priority": "low"})
    try:
        page.goto("/dashboard")
        page.evaluate("window.__noReload = true")
        line = row(page, job_id)
        expect(line.locator(".badge")).to_have_text("pending")
        expect(line.locator(".priority-tag")).to_have_text("low priority")
        note = line.locator(".queue-note")
        expect(note).to_have_text(QUEUED)
        expect(note).to_be_visible()
        detail = line.locator('[data-cell="detail"]')
        expect(detail).to_have_text(WAITS_FOR)
        changes_twice(detail)  # live: the chunks ahead of it drain
        assert page.evaluate("window.__noReload") is True
        check_a11y(page, "dashboard-queued")
    finally:
        cancel(filler["context"], filler["jobs"][0])

    # Once the slots free, it runs and completes; the queue note goes away.
    expect(line.locator(".badge")).to_have_text("completed", timeout=30_000)
    expect(note).to_be_hidden()
    expect(detail).not_to_have_text(re.compile("^Queued"))
    expect(line.get_by_role("cell").nth(7)).to_have_text("2,001,000")
    assert page.evaluate("window.__noReload") is True


def test_a_queued_job_page_shows_its_place_until_it_runs(page, context, filler):
    sign_up(context)
    job_id = post_job(context, {"kind": "sleepy_sum", "n": 2_000, "chunks": 2, "priority": "low"})
    try:
        page.goto(f"/dashboard/jobs/{job_id}")
        expect(page.locator("#job-badge")).to_have_text("pending")
        expect(page.locator("#job-queue")).to_have_text(QUEUED)
        expect(page.locator("#job-priority-tag")).to_have_text("low priority")
        expect(page.locator("#f-priority")).to_have_text("low")
        expect(page.locator("#f-detail")).to_have_text(WAITS_FOR)
        changes_twice(page.locator("#f-detail"))
        place = context.request.get(f"/jobs/{job_id}").json()["queue_position"]  # the server's, as shown
        if place is not None:
            expect(page.locator("#job-queue")).to_have_text(f"Queued · #{place}")
        check_a11y(page, "job-queued")
    finally:
        cancel(filler["context"], filler["jobs"][0])

    expect(page.locator("#job-badge")).to_have_text("completed", timeout=30_000)
    expect(page.locator("#job-queue")).to_be_hidden()
    expect(page.locator("#f-detail")).not_to_have_text(re.compile("^Queued"))
    expect(page.locator("#f-result")).to_have_text("2,001,000")


def test_home_cluster_card_shows_queued_chunks_by_priority(page, filler):
    a = filler["context"]
    filler["jobs"].append(post_job(a, {"kind": "sleepy_sum", "n": 2_000, "chunks": 2, "priority": "low"}))
    page.goto("/")
    card = page.locator("#cl-queue")
    expect(card.get_by_text("Queued chunks")).to_be_visible()
    expect(page.locator("#cl-queued-high")).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    expect(page.locator("#cl-queued-low")).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    expect(page.locator("#cl-queued-normal")).to_have_text(re.compile(r"^[\d,]+$"))
    shown = card.evaluate("c => ['total', 'high', 'normal', 'low'].map(p => c.querySelector(`[data-queue=${p}]`).textContent)")
    total, *counts = [int(text.replace(",", "")) for text in shown]  # one drawing of the card
    assert total == sum(counts), shown

    scheduler = page.request.get("/monitoring/cluster").json()["scheduler"]
    assert scheduler["policy"] == "fair" and scheduler["max_inflight_chunks"] >= 4, scheduler
    slots = page.locator("#cl-slots")
    expect(slots).to_have_text(re.compile(rf"^in flight: \d+ of {scheduler['max_inflight_chunks']:,} slots$"))
    meter = page.get_by_role("progressbar", name="Chunk slots in use")
    expect(meter).to_be_visible()
    expect(meter).to_have_attribute("aria-valuetext", re.compile(r"^\d+ of \d+ chunk slots in use$"))
    check_a11y(page, "home-queued")

    # Without the runner's figures (null), and under fifo (no bound): said in words, no meter.
    shown = page.evaluate("""async () => {
        const { renderQueueCard } = await import('/static/js/schedule.js');
        const card = document.querySelector('#cl-queue').cloneNode(true);
        const text = (name) => card.querySelector(`[data-queue="${name}"]`).textContent;
        renderQueueCard(card, null);
        const missing = [text('total'), text('slots'), card.querySelector('[data-queue="meter"]').hidden];
        renderQueueCard(card, {policy: 'fifo', max_inflight_chunks: null, inflight_chunks: 12, interactive_inflight: 0,
                               queued_chunks: {high: 1, normal: 2, low: 3}});
        return {missing, fifo: [text('total'), text('slots'), card.querySelector('[data-queue="meter"]').hidden]};
    }""")
    assert shown["missing"] == ["—", "Scheduler figures unavailable: the job runner is not answering.", True], shown
    assert shown["fifo"] == ["6", "in flight: 12, no limit (fifo)", True], shown
