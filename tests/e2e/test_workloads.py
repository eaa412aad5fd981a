"""Real workloads in the browser (issue 11): the submit form built from GET /kinds, uploads with a
progress bar, results by their shape (an image, a table of top words, files to download), the
picture filling in band by band, chunk attempts and progress, and retrying a job."""

import hashlib
import json
import re
from collections import Counter
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SCREENSHOTS, csrf_token, sign_up, wait_job
from tests.e2e.test_pages_a11y import serious_violations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def post_job(context, body: dict) -> str:
    response = context.request.post("/jobs", data=body, headers={"X-CSRF-Token": csrf_token(context)})
    assert response.status == 202, response.text()
    return response.json()["job_id"]


def submit_from_form(page) -> str:
    """Click Submit job; the id of the job the server accepted."""
    with page.expect_response(lambda r: r.url.endswith("/jobs") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Submit job").click()
    assert answer.value.status == 202, answer.value.text()
    return answer.value.json()["job_id"]


def check_a11y(page, name: str) -> None:
    """Screenshots at 360 and 1440 px and axe-core without serious or critical violations."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    report = {}
    for width in (360, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of the picture
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        violations = serious_violations(page)
        if violations:
            report[f"{name} @ {width}px"] = violations
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not report, report


def test_mandelbrot_from_the_form_shows_the_png_and_its_download(page, context):
    sign_up(context)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/jobs") else None)
    page.goto("/dashboard")
    page.locator("#job-kind").select_option("mandelbrot")
    width = page.get_by_label("width", exact=True)
    expect(width).to_have_attribute("max", "4096")  # from the kind's params schema
    expect(page.get_by_label("max_iter")).to_have_attribute("max", "10000")
    expect(page.locator("#job-width-hint")).to_contain_text("1 to 4,096")

    # Checked in the browser against the schema: nothing is sent.
    width.fill("5000")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#job-width-error")).to_have_text("width must be between 1 and 4,096.")
    expect(width).to_have_attribute("aria-invalid", "true")
    assert posts == []

    width.fill("64")
    page.get_by_label("height", exact=True).fill("48")
    page.get_by_label("max_iter").fill("60")
    page.get_by_label("Chunks").fill("4")
    job_id = submit_from_form(page)
    check_a11y(page, "dashboard-mandelbrot-form")

    row = page.locator(f'tr[data-job-id="{job_id}"]')
    expect(row.locator(".badge")).to_have_text("completed", timeout=60_000)
    expect(row.get_by_role("cell").nth(7)).to_have_text("mandelbrot.png")
    row.get_by_role("link", name=re.compile("^Job .* details")).click()

    expect(page.locator("#job-badge")).to_have_text("completed")
    expect(page.locator("#f-params [data-param='width'] dd")).to_have_text("64")
    image = page.locator("#job-picture img")
    expect(image).to_have_attribute("src", f"/jobs/{job_id}/artifacts/mandelbrot.png")
    expect(image).to_have_attribute("alt", re.compile("64 × 48 pixels"))
    page.wait_for_function("img => img.complete && img.naturalWidth === 64 && img.naturalHeight === 48",
                           arg=image.element_handle())
    expect(page.locator("#job-picture .band")).to_have_count(0)  # the finished image, untinted

    download = page.get_by_role("link", name="Download mandelbrot.png")
    expect(download).to_be_visible()
    expect(page.locator("#job-artifacts")).to_contain_text("image/png")
    response = page.request.get(download.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"].startswith("image/png")
    assert response.body().startswith(PNG_MAGIC)
    expect(page.locator("#job-artifacts details summary")).to_contain_text("bands")  # the band files, folded away
    check_a11y(page, "job-mandelbrot")


def test_mandelbrot_bands_fill_in_tinted_by_node_until_the_final_png(page, context):
    """While the job runs, each finished chunk's band stands at its rows, tinted by its node; at the end
    the final PNG replaces them. (The run is held at "running" by answering the job's reads from a
    copy, so the bands of a real, finished job can be looked at without a race.)"""
    sign_up(context)
    params = {"width": 48, "height": 40, "max_iter": 40}
    job_id = post_job(context, {"kind": "mandelbrot", "params": params, "chunks": 4})
    job = wait_job(context, job_id)
    assert job["status"] == "completed", (job["detail"], job)
    held = {**job, "status": "running", "result": None, "completed_at": None, "duration_ms": None,
            "progress": 0.75, "completed_chunks": 3}

    def still_running(route):
        route.fulfill(status=200, content_type="application/json", body=json.dumps(held))

    def job_read(url: str) -> bool:  # GET /jobs/{id}, not the page /dashboard/jobs/{id}
        return urlparse(url).path == f"/jobs/{job_id}"

    page.route(job_read, still_running)
    page.route(f"**/jobs/{job_id}/events*", lambda route: route.abort())  # read by polling, through the copy
    page.goto(f"/dashboard/jobs/{job_id}")
    expect(page.locator("#job-badge")).to_have_text("running")
    bands = page.locator("#job-picture .band")
    expect(bands).to_have_count(4)
    expect(page.locator("#job-picture")).to_have_attribute("role", "img")
    expect(page.locator("#job-picture")).to_have_attribute("aria-label", re.compile("4 of 4 bands"))
    chunks = context.request.get(f"/jobs/{job_id}/chunks").json()["chunks"]
    for chunk in chunks:
        band = page.locator(f'#job-picture .band[data-index="{chunk["index"]}"]')
        expect(band).to_have_class(re.compile(r"\bnode-[1-8]\b"))
        expect(band.locator("img")).to_have_attribute("src", f"/jobs/{job_id}/artifacts/{chunk['result']['artifact']}")
        top = band.evaluate("b => b.style.top")
        assert float(top.rstrip("%")) == pytest.approx(chunk["result"]["start"] / 40 * 100), top
    # The band's colour is its node's colour in the timeline.
    first = chunks[0]
    swatch = page.locator(f'.timeline-bar[data-index="{first["index"]}"]')
    band_class = re.search(r"node-\d", page.locator('#job-picture .band[data-index="0"]').get_attribute("class"))[0]
    expect(swatch).to_have_class(re.compile(rf"\b{band_class}\b"))
    page.wait_for_function("() => [...document.querySelectorAll('#job-picture .band img')]"
                           ".every(i => i.complete && i.naturalWidth === 48)")
    check_a11y(page, "job-mandelbrot-bands")

    page.unroute(job_read)  # the next poll reads the real, completed job
    expect(page.locator("#job-badge")).to_have_text("completed", timeout=15_000)
    expect(bands).to_have_count(0)
    expect(page.locator("#job-picture img")).to_have_attribute("src", f"/jobs/{job_id}/artifacts/mandelbrot.png")


def test_word_count_upload_with_progress_and_the_top_words_table(page, context):
    sign_up(context)
    text = "The cat saw the dog. The dog saw a cat; the end.\nÉtude, étude, ÉTUDE!\n" * 40
    expected = Counter(re.findall(r"\w+", text.casefold()))
    top = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:3]
    page.goto("/dashboard")
    page.locator("#job-kind").select_option("word_count")
    file_input = page.get_by_label("upload_id (file)")

    # An upload the server refuses: its reason, in words, next to the field.
    page.route("**/uploads", lambda route: route.fulfill(
        status=413, content_type="application/json", body=json.dumps({"detail": "The upload is larger than 64 MiB."})))
    file_input.set_input_files(files=[{"name": "big.txt", "mimeType": "text/plain", "buffer": b"x" * 10}])
    expect(page.locator("#job-upload_id-error")).to_have_text("The upload is larger than 64 MiB.")
    page.unroute("**/uploads")

    data = text.encode()
    file_input.set_input_files(files=[{"name": "words.txt", "mimeType": "text/plain", "buffer": data}])
    bar = page.get_by_role("progressbar", name="Upload of upload_id")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=20_000)
    status = page.locator("#job-upload_id-status")
    expect(status).to_contain_text("words.txt: ")
    expect(status).to_contain_text(f"({len(data):,} bytes)")
    expect(status).to_contain_text(hashlib.sha256(data).hexdigest())
    expect(page.locator("#job-upload_id-error")).to_have_text("")
    page.get_by_label("top_k").fill("3")
    page.get_by_label("Chunks").fill("2")
    job_id = submit_from_form(page)

    page.goto(f"/dashboard/jobs/{job_id}")
    expect(page.locator("#job-badge")).to_have_text("completed", timeout=60_000)
    table = page.get_by_role("table", name=re.compile("^Top 3 words"))
    expect(table.locator("tbody tr")).to_have_count(3)
    rows = table.locator("tbody tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert rows == [[str(i + 1), word, f"{count:,}"] for i, (word, count) in enumerate(top)], rows
    expect(page.locator('#job-result [data-key="total_words"] dd')).to_have_text(f"{sum(expected.values()):,}")
    expect(page.locator('#job-result [data-key="distinct_words"] dd')).to_have_text(f"{len(expected):,}")
    expect(page.locator("#f-params [data-param='upload_id'] dd")).to_contain_text("words.txt")
    check_a11y(page, "job-word-count")


def test_chunk_attempts_and_progress(page, context):
    """A kind that fails transiently twice per chunk: the chunk table shows 3 attempts and the errors
    of the failed ones; while a chunk works, its own progress."""
    sign_up(context)
    job_id = post_job(context, {"kind": "flaky", "params": {"n": 100, "failures": 2, "sleep": 1.5}, "chunks": 2})
    page.goto(f"/dashboard/jobs/{job_id}")
    chunk_progress = page.get_by_role("progressbar", name=re.compile(r"^Progress of chunk #\d")).first
    expect(chunk_progress).to_be_visible(timeout=20_000)
    expect(page.locator("#job-badge")).to_have_text("completed", timeout=60_000)
    table = page.get_by_role("table", name=re.compile("Chunks of job"))
    expect(table.locator("thead")).to_contain_text("Attempts")  # the table is drawn again as facts arrive
    head = table.locator("thead th").all_text_contents()
    attempts = head.index("Attempts")
    for row in table.locator("tbody tr").all():
        cell = row.get_by_role("cell").nth(attempts)
        expect(cell.locator("span.num")).to_have_text("3")
        cell.locator("summary").click()
        expect(cell.locator("li")).to_have_count(2)
        expect(cell.locator("li").first).to_contain_text("flaky backend (attempt 1)")
    expect(page.locator('#job-result [data-key="sum"] dd')).to_have_text("5,050")


def test_retry_a_cancelled_job(page, context):
    sign_up(context)
    job_id = post_job(context, {"n": 6_000, "chunks": 2, "kind": "sleepy_sum"})  # ~3 s per chunk
    wait_job(context, job_id, until=("running",))
    response = context.request.delete(f"/jobs/{job_id}", headers={"X-CSRF-Token": csrf_token(context)})
    assert response.status == 200, response.text()

    page.goto(f"/dashboard/jobs/{job_id}")
    expect(page.locator("#job-badge")).to_have_text("cancelled")
    expect(page.locator("#f-retry-of-fact")).to_be_hidden()
    page.get_by_role("button", name="Retry job").click()
    expect(page).not_to_have_url(re.compile(job_id))
    new_id = page.url.rstrip("/").split("/")[-1]
    link = page.locator("#f-retry-of a")
    expect(link).to_have_text(job_id[:8])
    expect(link).to_have_attribute("href", f"/dashboard/jobs/{job_id}")
    expect(page.locator("#job-badge")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#f-result")).to_have_text("18,003,000")
    expect(page.get_by_role("button", name="Retry job")).to_be_hidden()
    assert context.request.get(f"/jobs/{new_id}").json()["retry_of"] == job_id
