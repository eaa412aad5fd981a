"""Helpers of the client's tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


class RecordingTransport(httpx.HTTPTransport):
    """The real transport; keeps each request it sends (to see what a retry sent, and when)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sent: list[tuple[float, httpx.Request]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((time.monotonic(), request))
        return super().handle_request(request)


def cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m client ARGS`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "client", *args], cwd=REPO, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120, **kwargs)
