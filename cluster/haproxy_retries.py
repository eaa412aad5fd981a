"""Let Serve's HAProxy replay a request a dying replica never answered, when a replay is safe.

Serve 2.60's HAProxy retries a request only when the connection to a replica fails
(``retry-on conn-failure``). A request already sent to a replica that then dies (SIGKILL, OOM,
node loss) is lost: HAProxy answers 502 (Serve's error file turns it into a bare 500) or, on a
keep-alive client connection, closes it without a response. Measured behind ``make run`` (2
replicas, one killed under load): every request sent after the kill was answered, but the ones in
flight on the killed replica failed that way.

``rewrite`` changes each config Serve starts HAProxy with so that:

- ``retry-on conn-failure empty-response``: a request the replica closed without answering is sent
  again, to the other replica (Serve's ``option redispatch 1``), up to ``retries`` (3) times;
- ``http-request disable-l7-retry`` unless the request is a read (GET, HEAD, OPTIONS) or a job
  submission (``POST /jobs``, ``POST /jobs/demo``) with an ``Idempotency-Key``: the app answers a
  replay of a key with the first request's job, or starts the job if the first never created it
  (serve_app/submission.py). Any other POST or DELETE may already have run on the dead replica, so
  it is never replayed: it fails as before (500, or the connection closed without an answer).

A response already started (an event stream, say) is never replayed: HAProxy retries only before
the first response byte. ``cluster/haproxy_forwarding.py``'s wrapper applies this to the config
before it ``exec``s HAProxy.
"""

from __future__ import annotations

import re

from cluster.haproxy_config import after_frontend_bind

MARKER = "# replay what a dead replica left unanswered, when safe (cluster/haproxy_retries.py)"
RETRY_ON = "retry-on conn-failure empty-response"
SAFE_METHODS = "GET HEAD OPTIONS"
REPLAYABLE_POSTS = "/jobs /jobs/demo"  # they honour Idempotency-Key


def rewrite(config: str) -> str:
    """The config with safe requests replayed on an empty response (unchanged if already rewritten)."""
    if MARKER in config:
        return config
    config, count = re.subn(r"(?m)^(\s*)retry-on\s+\S.*$", rf"\g<1>{RETRY_ON}", config)
    if count == 0:  # Serve wrote no retry policy: add ours to the defaults section
        config, count = re.subn(r"(?m)^defaults\s*$", f"defaults\n    {RETRY_ON}", config, count=1)
    if count == 0:
        raise SystemExit("haproxy_retries: no 'defaults' section in the config")
    lines = config.splitlines()
    at = after_frontend_bind(lines, "haproxy_retries")
    rules = [f"    {MARKER}",
             f"    acl l7_read method {SAFE_METHODS}",
             "    acl l7_post method POST",  # (ACL lines of one name are OR-ed, so two names)
             f"    acl l7_submission path {REPLAYABLE_POSTS}",
             "    acl l7_keyed req.hdr(idempotency-key) -m found",
             "    http-request disable-l7-retry unless l7_read || l7_post l7_submission l7_keyed",
             # HAProxy replays only a request it had whole when it sent it: wait for the (small) body
             "    http-request wait-for-body time 2s if l7_post l7_submission l7_keyed"]
    return "\n".join(lines[:at] + rules + lines[at:]) + "\n"
