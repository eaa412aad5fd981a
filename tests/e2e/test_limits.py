"""Every limit a page shows or checks is the one GET /kinds reports (and so the server's settings)."""

from limits import parse
from playwright.sync_api import expect

from tests.e2e.conftest import sign_up

PLACEHOLDER = "…"


def rate_text(limit: str, unit: str = "") -> str:
    """What the pages make of a rate limit such as "5/minute" (limits.js rateText)."""
    item = parse(limit)
    per = f"every {item.multiples:,} {item.GRANULARITY.name}s" if item.multiples > 1 else f"per {item.GRANULARITY.name}"
    return " ".join(part for part in (f"{item.amount:,}", unit, per) if part)


def value_at(config: dict, path: str):
    value = config["limits"]
    for key in path.split("."):
        value = value[key]
    return value


def assert_limits_shown(page, config: dict) -> None:
    """Each marked spot on the page shows (or, for inputs, enforces) the value at its path."""
    expect(page.locator("[data-limit]").filter(has_text=PLACEHOLDER)).to_have_count(0)
    spots = page.evaluate("""() => [...document.querySelectorAll('[data-limit]')]
        .map(node => [node.dataset.limit, node.dataset.unit || '', node.textContent])""")
    assert spots, "no limits on the page"
    for path, unit, text in spots:
        value = value_at(config, path)
        assert text == (rate_text(value, unit) if isinstance(value, str) else f"{value:,}"), (path, text)
    for input_ in page.locator("[data-limit-max]").all():
        expect(input_).to_have_attribute("max", str(value_at(config, input_.get_attribute("data-limit-max"))))


def test_pages_show_the_servers_limits(page, context):
    config = page.request.get("/kinds").json()
    demo, jobs = config["limits"]["demo"], config["limits"]["jobs"]
    names = [kind["name"] for kind in config["kinds"]]

    page.goto("/")
    expect(page.locator("#try-n")).to_have_attribute("max", str(demo["max_n"]))
    expect(page.locator("#try-chunks")).to_have_attribute("max", str(demo["max_chunks"]))
    expect(page.locator("#try-n-hint")).to_have_text(f"1 to {demo['max_n']:,}")
    expect(page.locator(".try-card .card-sub")).to_contain_text(
        f"n ≤ {demo['max_n']:,}, chunks ≤ {demo['max_chunks']:,}, {rate_text(demo['rate_limit'], 'runs')}.")
    expect(page.locator("#try-kind option")).to_have_count(len(names))
    assert page.locator("#try-kind option").evaluate_all("options => options.map(o => o.value)") == names
    expect(page.locator("#try-kind")).to_have_value("range_sum")
    assert_limits_shown(page, config)

    page.goto("/register")
    assert_limits_shown(page, config)

    page.goto("/guide")
    expect(page.locator("#kinds-body tr")).to_have_count(len(names))
    rows = page.locator("#kinds-body tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert [row[:2] for row in rows] == [[kind["name"], kind["description"]] for kind in config["kinds"]]
    assert_limits_shown(page, config)

    sign_up(context)
    page.goto("/dashboard")
    expect(page.locator("#job-n")).to_have_attribute("max", str(jobs["max_n"]))
    expect(page.locator("#job-chunks-hint")).to_have_text(f"1 to {jobs['max_chunks']:,}")
    expect(page.locator(".limits")).to_contain_text(f"{jobs['max_active_jobs']:,} active jobs at once")
    expect(page.locator("#job-kind option")).to_have_count(len(names))
    assert page.locator("#job-kind option").evaluate_all("options => options.map(o => o.value)") == names
    assert_limits_shown(page, config)


def test_form_checks_use_the_servers_limits(page, context):
    jobs = page.request.get("/kinds").json()["limits"]["jobs"]
    sign_up(context)
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.goto("/dashboard")
    page.get_by_label("Chunks").fill(str(jobs["max_chunks"] + 1))
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#job-chunks-error")).to_have_text(f"Chunks must be between 1 and {jobs['max_chunks']:,}.")
    expect(page.get_by_label("Chunks")).to_have_attribute("aria-invalid", "true")
    assert posts == []  # checked in the browser, nothing sent
