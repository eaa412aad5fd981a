"""The guide's curl examples, taken from the rendered page and run against the live server."""

import json
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import client_ip


class Shell:
    """Runs the page's curl commands (with $VARIABLES filled in) from one client address."""

    def __init__(self, examples: dict[str, str], variables: dict[str, str]):
        self.examples, self.variables, self.ip = examples, variables, client_ip()

    def run(self, name: str, replace: dict[str, str] | None = None) -> tuple[int, str]:
        text = self.examples[name].replace("\\\n", " ")
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        for key, value in sorted(self.variables.items(), key=lambda kv: -len(kv[0])):  # $TOKEN_ID before $TOKEN
            text = text.replace(f"${key}", value)
        argv = shlex.split(text)
        assert argv[0] == "curl" and "$" not in text, text
        argv += ["-H", f"X-Forwarded-For: {self.ip}", "--max-time", "30", "-w", "\n%{http_code}"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=40, check=True).stdout
        body, _, status = out.rpartition("\n")
        return int(status), body

    def json(self, name: str, expect_status: int = 200, **kw) -> dict:
        status, body = self.run(name, **kw)
        assert status == expect_status, (name, status, body)
        return json.loads(body) if body else {}


def examples_on(page) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('code[data-run]')]
        .map(c => [c.dataset.run, c.textContent]))""")


def test_guide_links_and_real_host(page, server):
    page.goto("/guide")
    expect(page.locator("#origin-inline")).to_have_text(server)
    for name, href in (("Swagger UI", "/docs"), ("ReDoc", "/redoc"), ("Ray dashboard", "http://127.0.0.1:8265")):
        link = page.get_by_role("main").get_by_role("link", name=re.compile(f"^{name}")).first
        expect(link).to_have_attribute("href", href)
    for topic in ("Idempotency-Key", "24 hours", "409", "5 per minute", "10 per minute", "event: done",
                  "range_sum", "prime_count", "Retry-After"):
        expect(page.get_by_role("main")).to_contain_text(topic)
    examples = examples_on(page)
    assert all(text.count(server) == 1 for text in examples.values()), examples
    assert "127.0.0.1:8000" not in page.locator("main").inner_text() or server.endswith(":8000")
    copy = page.locator(".code .copy-btn").first
    copy.click()
    expect(copy).to_have_text("Copied!")


def test_demo_examples_run_as_written(page):
    page.goto("/guide")
    shell = Shell(examples_on(page), {})
    assert {"range_sum", "prime_count"} <= {kind["name"] for kind in shell.json("kinds")["kinds"]}
    accepted = shell.json("demo-submit", 202)
    assert accepted["status"] == "pending"
    shell.variables["JOB_ID"] = accepted["job_id"]
    deadline = time.monotonic() + 30
    while (job := shell.json("demo-status"))["status"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"the demo job did not finish in 30 s: {job}"
        time.sleep(0.2)
    assert job["status"] == "completed" and job["result"] == 500500
    chunks = shell.json("demo-chunks")
    assert len(chunks["chunks"]) == 4 and all(c["node_id"] for c in chunks["chunks"])
    status, stream = shell.run("demo-events")
    assert status == 200 and "event: done" in stream and '"result":500500' in stream


def test_account_and_job_examples_run_as_written(page, tmp_path):
    page.goto("/guide")
    email = f"guide-{uuid.uuid4().hex[:10]}@example.com"
    shell = Shell(examples_on(page), {})
    you = {"you@example.com": email}

    assert shell.json("register", 201, replace=you)["email"] == email
    jwt = shell.json("login", replace=you)["access_token"]
    shell.variables["TOKEN"] = jwt
    created = shell.json("token-create", 201)
    assert created["token"].startswith("rjt_")
    shell.variables.update(TOKEN=created["token"], TOKEN_ID=created["id"])  # the API token from here on

    accepted = shell.json("job-submit", 202)
    shell.variables["JOB_ID"] = accepted["job_id"]
    replay = shell.json("job-submit", 202)  # same Idempotency-Key, same body: the same job
    assert replay["job_id"] == accepted["job_id"]
    assert shell.json("job-status")["job_id"] == accepted["job_id"]
    assert len(shell.json("job-chunks")["chunks"]) == 16
    cancelled = shell.json("job-cancel")
    assert cancelled["status"] == "cancelled"
    status, stream = shell.run("job-events")
    assert status == 200 and "event: done" in stream
    assert shell.json("job-cancel", 409)["detail"].startswith("Job already cancelled")
    listing = shell.json("job-list")
    assert listing["items"] == [] and listing["limit"] == 20

    assert shell.json("me")["email"] == email
    assert shell.json("me-stats")["cancelled"] == 1
    assert [t["id"] for t in shell.json("token-list")] == [created["id"]]
    shell.json("token-revoke", 204)
    assert shell.run("me")[0] == 401  # the revoked API token no longer works

    shell.variables["TOKEN"] = jwt
    assert shell.run("logout")[0] == 204
    assert shell.run("me")[0] == 401  # nor the logged-out access token

    jar = str(tmp_path / "cookies.txt")
    session = {"cookies.txt": jar, **you}
    assert shell.json("session-create", replace=session)["email"] == email
    lines = Path(jar).read_text().splitlines()
    cookies = {line.split("\t")[5]: line.split("\t")[6] for line in lines if line.count("\t") == 6}
    assert {"session", "csrf_token"} <= cookies.keys()
    shell.variables["CSRF"] = "wrong"
    assert shell.run("session-delete", replace=session)[0] == 401  # a write without the CSRF value is refused
    shell.variables["CSRF"] = cookies["csrf_token"]
    assert shell.run("session-delete", replace=session)[0] == 204

    shell.variables["TOKEN"] = shell.json("login", replace=you)["access_token"]
    assert shell.run("me-delete")[0] == 204
    assert shell.run("login", replace=you)[0] == 401  # the account is gone

    assert shell.json("health")["status"] == "ok"
    assert shell.json("cluster")["nodes_alive"] >= 1
