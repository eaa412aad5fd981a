"""Home page: the Try-It demo, its 429 countdown, the live cluster cards, navbar behaviour, 404."""

import re

from limits import parse
from playwright.sync_api import expect


def test_try_it_runs_to_an_exact_result(page):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ray runs it in parallel")
    expect(page.get_by_role("link", name="Get started").first).to_be_visible()
    expect(page.get_by_label("n", exact=True)).to_have_value("1000")
    expect(page.get_by_label("Chunks")).to_have_value("4")

    page.get_by_role("button", name="Run").click()

    expect(page.locator("#try-value")).to_have_text("500,500", timeout=30_000)
    bar = page.get_by_role("progressbar", name="Demo job progress")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#try-percent")).to_have_text("100%")
    expect(page.locator("#try-chunks-done")).to_have_text("4/4 chunks")
    expect(page.locator("#try-badge")).to_have_text("completed")
    expect(page.locator("#try-live")).to_contain_text("500,500")
    expect(page.locator("#try-timeline .timeline-bar")).to_have_count(4)
    expect(page.get_by_role("button", name="Run")).to_be_enabled()


def test_try_it_validates_before_sending(page):
    max_n = page.request.get("/kinds").json()["limits"]["demo"]["max_n"]
    page.goto("/")
    page.get_by_label("n", exact=True).fill(str(max_n + 1))
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#try-n-error")).to_have_text(f"n must be between 1 and {max_n:,}.")
    expect(page.get_by_label("n", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#try-result")).to_be_hidden()


def test_try_it_rate_limit_shows_a_live_countdown(page):
    rate = parse(page.request.get("/kinds").json()["limits"]["demo"]["rate_limit"])  # 5/minute per client IP
    page.goto("/")
    for _ in range(rate.amount):
        assert page.request.post("/jobs/demo", data={"n": 10, "chunks": 1}).status == 202

    run = page.get_by_role("button", name="Run")
    run.click()

    limit = page.locator("#try-limit")
    expect(limit).to_be_visible()
    expect(limit).to_contain_text("Demo limit reached")
    expect(limit).to_contain_text(f"{rate.amount} runs per {rate.GRANULARITY.name}")
    countdown = page.locator("#try-countdown")
    expect(countdown).to_have_text(re.compile(r"^\d+ s$"))
    expect(run).to_be_disabled()
    first = int(countdown.inner_text().split()[0])
    assert 1 <= first <= 60
    expect(countdown).not_to_have_text(f"{first} s", timeout=3000)  # it counts down, live
    assert int(countdown.inner_text().split()[0]) < first
    expect(page.locator("#try-error")).to_be_hidden()  # a limit is not shown as an error


def test_countdown_reenables_the_button_at_zero(page):
    page.route("**/jobs/demo", lambda route: route.fulfill(
        status=429, headers={"Retry-After": "2", "Content-Type": "application/json"},
        body='{"detail": "Rate limit exceeded (5/minute). Try again in 2 s.", "retry_after": 2}'))
    page.goto("/")
    run = page.get_by_role("button", name="Run")
    run.click()
    expect(page.locator("#try-countdown")).to_have_text("2 s")
    expect(run).to_be_disabled()
    expect(run).to_be_enabled(timeout=5000)
    expect(page.locator("#try-limit")).to_be_hidden()


def test_errors_are_sentences_not_json(page):
    page.route("**/jobs/demo", lambda route: route.fulfill(
        status=503, headers={"Content-Type": "application/json"},
        body='{"detail": "The compute cluster (Ray) is unavailable; the job was not started."}'))
    page.goto("/")
    page.get_by_role("button", name="Run").click()
    error = page.get_by_role("alert")
    expect(error).to_have_text("The compute cluster (Ray) is unavailable; the job was not started.")
    page.unroute("**/jobs/demo")
    page.route("**/jobs/demo", lambda route: route.fulfill(status=502, body="<html>bad gateway</html>"))
    page.get_by_role("button", name="Run").click()
    expect(error).to_have_text("The server ran into a problem (HTTP 502). Please try again shortly.")
    assert "{" not in error.inner_text()


def test_cluster_cards_and_health_dot(page):
    page.goto("/")
    expect(page.locator("#cl-nodes")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#cl-cpus")).to_have_text(re.compile(r"^[\d.]+ / [\d.]+$"))
    expect(page.locator("#cl-jobs")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#cl-rate")).to_have_text(re.compile(r"^[\d.,]+$"))
    health = page.locator(".health")
    expect(health).to_have_attribute("data-state", "ok")
    expect(health).to_have_text("API healthy")  # read by screen readers (visible on wide screens)
    for name in ("Ray", "Ray Serve", "FastAPI", "Redis"):
        expect(page.locator(".stack-item strong", has_text=re.compile(f"^{name}$"))).to_be_visible()


def test_health_dot_turns_red_when_the_api_is_down(page):
    page.route("**/monitoring/health", lambda route: route.fulfill(
        status=503, headers={"Content-Type": "application/json"},
        body='{"status": "degraded", "redis": "ok", "ray": "unavailable", "version": "0"}'))
    page.goto("/")
    expect(page.locator(".health")).to_have_attribute("data-state", "down")
    expect(page.locator(".health")).to_have_text("API degraded")


def test_big_integers_stay_exact(page):
    page.goto("/")
    got = page.evaluate("""async () => {
        const api = await import('/static/js/api.js');
        const fmt = await import('/static/js/format.js');
        const a = api.parseJson('{"detail": "n: 12345678901234567890, ok", "result": 123456789012345678901234567890, "n": 5}');
        return [fmt.formatInt(a.result), typeof a.result, a.detail, a.n, typeof a.n,
                fmt.formatInt(api.parseJson('{"result": 9007199254740993}').result),
                fmt.formatInt(api.parseJson('[-9007199254740993, 1.5e300]')[0]), api.parseJson('[1.5e300]')[0]];
    }""")
    assert got == ["123,456,789,012,345,678,901,234,567,890", "bigint", "n: 12345678901234567890, ok", 5, "number",
                   "9,007,199,254,740,993", "-9,007,199,254,740,993", 1.5e300]


def test_theme_toggle_is_remembered(page):
    page.goto("/")
    html = page.locator("html")
    expect(html).to_have_attribute("data-theme", "dark")
    page.get_by_role("button", name="Switch to light theme").click()
    expect(html).to_have_attribute("data-theme", "light")
    page.goto("/guide")
    expect(html).to_have_attribute("data-theme", "light")
    page.get_by_role("button", name="Switch to dark theme").click()
    expect(html).to_have_attribute("data-theme", "dark")


def test_navbar_collapses_into_a_keyboard_operable_menu(page):
    page.set_viewport_size({"width": 360, "height": 780})
    page.goto("/")
    guide = page.get_by_role("navigation", name="Main").get_by_role("link", name="Guide", exact=True)
    expect(guide).to_be_hidden()
    toggle = page.get_by_role("button", name="Open menu")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(guide).to_be_visible()
    expect(page.get_by_role("button", name="Close menu")).to_have_attribute("aria-expanded", "true")
    for name in ("Home", "Dashboard", "API docs", "Ray dashboard (external)"):
        expect(page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)).to_be_visible()
    ray = page.get_by_role("navigation", name="Main").get_by_role("link", name="Ray dashboard")
    expect(ray).to_have_attribute("href", "http://127.0.0.1:8265")
    guide.focus()
    page.keyboard.press("Escape")
    expect(guide).to_be_hidden()
    expect(page.get_by_role("button", name="Open menu")).to_be_focused()


def test_unknown_page_is_a_friendly_404(page):
    response = page.goto("/no/such/page")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This page doesn't exist")
    expect(page.locator("#missing-path")).to_have_text("/no/such/page")
    expect(page.get_by_role("link", name="Go home")).to_have_attribute("href", "/")
    api = page.request.get("/no/such/route", headers={"Accept": "application/json"})
    assert api.status == 404 and api.json()["detail"]
