"""Which address rate limits key on: proxy headers count only from trusted proxies."""

from ipaddress import ip_network

import pytest
from starlette.requests import Request

from serve_app.client_ip import client_ip

TRUSTED = [ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8")]


def request(peer: str, **headers: str) -> Request:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "client": (peer, 1234), "headers": raw})


@pytest.mark.parametrize("peer, headers, expected", [
    ("203.0.113.9", {"x_forwarded_for": "1.2.3.4"}, "203.0.113.9"),            # untrusted peer: header ignored
    ("127.0.0.1", {}, "127.0.0.1"),                                              # trusted, no header
    ("127.0.0.1", {"x_forwarded_for": "1.2.3.4"}, "1.2.3.4"),
    ("127.0.0.1", {"x_forwarded_for": "6.6.6.6, 1.2.3.4, 10.1.1.1"}, "1.2.3.4"),  # nearest untrusted hop
    ("127.0.0.1", {"x_forwarded_for": "garbage"}, "127.0.0.1"),
    ("127.0.0.1", {"forwarded": 'for=192.0.2.60;proto=http;by=203.0.113.43'}, "192.0.2.60"),
    ("127.0.0.1", {"forwarded": 'for="[2001:db8:cafe::17]:4711"'}, "2001:db8:cafe::17"),
    ("127.0.0.1", {"forwarded": "for=192.0.2.43:8080, for=10.0.0.5"}, "192.0.2.43"),
    ("127.0.0.1", {"x_forwarded_for": "10.0.0.1, 10.0.0.2"}, "127.0.0.1"),        # all hops trusted
    ("not-an-ip", {"x_forwarded_for": "1.2.3.4"}, "not-an-ip"),
])
def test_client_ip(peer, headers, expected):
    assert client_ip(request(peer, **headers), TRUSTED) == expected


def test_no_trusted_proxies_means_the_peer():
    assert client_ip(request("127.0.0.1", x_forwarded_for="1.2.3.4"), []) == "127.0.0.1"


def test_several_forwarded_for_fields_are_one_list():
    """HAProxy appends its own X-Forwarded-For field after one a trusted proxy sent."""
    raw = [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"10.9.9.9")]
    req = Request({"type": "http", "client": ("127.0.0.1", 1234), "headers": raw})
    assert client_ip(req, TRUSTED) == "1.2.3.4"
