"""How HTTP reaches the Serve replicas, and which peer the app believes about a client's address.

Set in the environment before the Ray head starts (Ray's processes read it when they start), by
``cluster up`` and by the test session, so both run the same ingress.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cluster import haproxy_forwarding
from cluster.ports import free_port

INGRESS_MODES = ("haproxy", "proxy")
HAPROXY_FILES = "/tmp/haproxy-serve"  # Serve's default base directory, one sub-directory per node
LOOPBACK_SOURCES = "127.0.0.1,::1"


def configure_ingress(mode: str, work_dir: Path, host: str = "127.0.0.1") -> None:
    """``haproxy`` (default): Serve's throughput-optimized mode behind HAProxy, which forwards straight
    to the replicas' own HTTP ports (on HOST too); it measured about 5x the status reads of Serve's
    Python proxy here (bench/README.md). HAProxy's frontend listens on HOST, but its stats and
    Prometheus ports (free ports chosen here) listen on all interfaces, as Ray's own gRPC ports do.
    ``proxy``: Serve's Python proxy (throughput-optimized too), every HTTP port on HOST, slower.

    In both, uvicorn's own ``X-Forwarded-For`` handling is off (it trusts 127.0.0.1 by default, which
    is where HAProxy and every local client connect from); ``serve_app/client_ip.py`` decides, trusting
    the header only from ``INGRESS_PROXIES`` (HAProxy's address, set here) and ``TRUSTED_PROXIES``.
    """
    if mode not in INGRESS_MODES:
        raise RuntimeError(f"SERVE_INGRESS must be one of {', '.join(INGRESS_MODES)} (got {mode!r})")
    os.environ["FORWARDED_ALLOW_IPS"] = ""  # matches no peer: uvicorn never rewrites the client address
    os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
    if mode == "haproxy":
        os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "1")
        os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(free_port()))
        os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(free_port()))
        # a replica being stopped keeps its port open this long for HAProxy to drain (default 30 s)
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "5")
        os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"] = haproxy_forwarding.install(work_dir.resolve() / "haproxy")
        # room for twice MAX_HEADER_BYTES of headers, so the app answers 431 (JSON) itself; beyond the
        # buffer HAProxy refuses the request with its own 400 page (HAProxy 2.8 takes no error file
        # for requests it cannot parse)
        os.environ.setdefault("RAY_SERVE_HAPROXY_TUNE_BUFSIZE", str(max(32768, 2 * _max_header_bytes())))
        if not os.environ.get("INGRESS_PROXIES"):  # empty (as in .env.example) means "HAProxy's"
            os.environ["INGRESS_PROXIES"] = ingress_sources(host)
    else:
        os.environ.setdefault("INGRESS_PROXIES", "")  # Serve's proxy hands the app the real TCP peer


def remove_haproxy_files(node_id: str) -> None:
    """HAProxy's config, socket and state files for a head node that has stopped."""
    shutil.rmtree(Path(HAPROXY_FILES) / node_id, ignore_errors=True)


def _max_header_bytes() -> int:
    from serve_app.settings import Settings

    return int(os.environ.get("MAX_HEADER_BYTES") or Settings.model_fields["max_header_bytes"].default)


def ingress_sources(host: str) -> str:
    """Addresses HAProxy connects to the replicas from: loopback, plus the node's address when the
    replicas listen beyond loopback (HOST=0.0.0.0, as in compose)."""
    if host.startswith("127.") or host in ("localhost", "::1"):
        return LOOPBACK_SOURCES
    from ray._private.services import get_node_ip_address

    return f"{LOOPBACK_SOURCES},{get_node_ip_address()}"
