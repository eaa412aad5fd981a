"""Every page at 360 px and 1440 px: a full-page screenshot for people to look at, and axe-core
with no serious or critical violations (dark theme at both widths; the light theme's contrast on desktop)."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.e2e.conftest import SCREENSHOTS, PageProblems, new_context

AXE = Axe()
PUBLIC = [("home", "/"), ("login", "/login"), ("register", "/register"), ("guide", "/guide"), ("404", "/no-such-page")]
SIGNED_IN = [("dashboard", "/dashboard"), ("job", "/dashboard/jobs/{big}")]


def wait_until_ready(page, name):
    expect(page.locator(".nav-auth > *").first).to_be_attached()  # the navbar knows who is signed in
    expect(page.locator(".health")).not_to_have_attribute("data-state", "unknown")
    expect(page.locator("[data-limit]").filter(has_text="…")).to_have_count(0)  # the limits from GET /kinds
    if name == "home":
        expect(page.locator("#cl-nodes")).to_have_text(re.compile(r"^\d+$"))
    elif name == "dashboard":
        expect(page.locator("#jobs-body tr[data-job-id]").first).to_be_visible()
        expect(page.locator("#token-list li[data-token-id]").first).to_be_visible()
        expect(page.locator("#stat-total")).not_to_have_text("—")
    elif name == "guide":
        expect(page.locator("#kinds-body tr[data-kind]").first).to_be_visible()
    elif name == "job":
        expect(page.locator(".timeline-bar").first).to_be_visible()


def serious_violations(page, only=None) -> list[str]:
    options = {"resultTypes": ["violations"]}
    if only:
        options["runOnly"] = {"type": "rule", "values": only}
    results = AXE.run(page, options=options)
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") in ("serious", "critical"):
            targets = [" ".join(node["target"]) for node in violation["nodes"][:5]]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return found


def check_pages(browser, server, seeded, width, theme="dark", suffix="", screenshots=None):
    """Visit every page in `theme`: screenshot (all, or the names in `screenshots`) and run axe."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    options = {"reduced_motion": "reduce", "viewport": {"width": width, "height": 900}}
    public = new_context(browser, server, **options)
    signed_in = new_context(browser, server, **options)
    signed_in.add_cookies(seeded["context"].cookies())
    problems, report = PageProblems(), {}
    try:
        for context, pages in ((public, PUBLIC), (signed_in, SIGNED_IN)):
            context.add_init_script(f"localStorage.setItem('theme', '{theme}')")
            page = problems.watch(context.new_page())
            for name, path in pages:
                page.goto(path.format(big=seeded["big"]))
                expect(page.locator("html")).to_have_attribute("data-theme", theme)
                wait_until_ready(page, name)
                if screenshots is None or name in screenshots:
                    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}{suffix}.png"), full_page=True)
                # The light pass changes only colours, so it checks only contrast.
                violations = serious_violations(page, only=["color-contrast"] if theme == "light" else None)
                if violations:
                    report[f"{name} @ {width}px {theme}"] = violations
                if name == "home" and width == 360:
                    page.evaluate("window.scrollTo(0, 0)")
                    page.get_by_role("button", name="Open menu").click()
                    expect(page.locator("#nav-panel")).to_be_visible()
                    page.screenshot(path=str(SCREENSHOTS / f"home-360-menu{suffix}.png"))
                    violations = serious_violations(page)
                    if violations:
                        report["home menu @ 360px"] = violations
            page.close()
    finally:
        public.close()
        signed_in.close()
    assert not report, report
    assert not problems.items, problems.items


@pytest.mark.parametrize("width", [360, 1440])
def test_every_page_dark(browser, server, seeded, width):
    check_pages(browser, server, seeded, width)


def test_every_page_light(browser, server, seeded):
    check_pages(browser, server, seeded, 1440, theme="light", suffix="-light",
                screenshots={"home", "login", "dashboard", "job"})
