"""Which client a request comes from, believing proxy headers only from trusted proxies."""

from __future__ import annotations

from ipaddress import ip_address

from fastapi import Request


def _parse_ip(value: str):
    value = value.strip().strip('"')
    if value.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        value = value[1:].split("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":")[0]
    try:
        return ip_address(value)
    except ValueError:
        return None


def _forwarded_chain(request: Request) -> list[str]:
    forwarded = request.headers.get("forwarded")
    if forwarded:
        chain = []
        for element in forwarded.split(","):
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                if name.strip().lower() == "for":
                    chain.append(value)
        return chain
    # several X-Forwarded-For fields are one comma-separated list (HAProxy appends its own field)
    header = ",".join(request.headers.getlist("x-forwarded-for"))
    return [part for part in header.split(",") if part.strip()]


def client_ip(request: Request, trusted_networks) -> str:
    """The peer address, or, when the peer is a trusted proxy, the nearest untrusted forwarded hop."""
    peer = request.client.host if request.client else "unknown"
    peer_ip = _parse_ip(peer)
    if peer_ip is None or not any(peer_ip in net for net in trusted_networks):
        return peer
    for hop in reversed(_forwarded_chain(request)):
        hop_ip = _parse_ip(hop)
        if hop_ip is None:
            return peer
        if not any(hop_ip in net for net in trusted_networks):
            return str(hop_ip)
    return peer
