"""Ports on this machine: a free one for each process the stack starts, and a check before binding.

Every port the stack does not take from the environment is picked here (Redis, the Ray head's GCS and
client server, HAProxy's stats and metrics), so several stacks and test sessions share one machine.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return False
        except OSError:
            return True
