"""Where in the config Serve writes for HAProxy our rules go: right after the HTTP frontend's ``bind``
line. Both rewrites of that config (``haproxy_forwarding`` and ``haproxy_retries``) insert there, and
both must fail loudly, naming themselves, when Serve's template no longer has that frontend."""

from __future__ import annotations

FRONTEND = "frontend http_frontend"


def after_frontend_bind(lines: list[str], rewrite: str) -> int:
    """The index just after the HTTP frontend's ``bind`` line; ``rewrite`` names the caller in the error."""
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == FRONTEND)
    except StopIteration:
        raise SystemExit(f"{rewrite}: no '{FRONTEND}' section in the config") from None
    return next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("bind ")) + 1
