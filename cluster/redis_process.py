"""A private redis-server process with AOF persistence (used by ``make run`` and the tests)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

INSTALL_HINT = ("redis-server is not installed. Install it with your package manager, e.g. "
                "'sudo apt-get install redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS), "
                "or point REDIS_URL at an existing Redis.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_redis_server(allow_install: bool = True) -> str:
    """The redis-server binary, installing Debian's package when missing and we are allowed to."""
    binary = shutil.which("redis-server")
    if binary:
        return binary
    if allow_install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("redis-server not found; installing Debian's redis-server package ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-server"], check=False,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
        binary = shutil.which("redis-server")
        if binary:
            return binary
    raise RuntimeError(INSTALL_HINT)


class RedisProcess:
    def __init__(self, data_dir: Path, port: int | None = None, appendonly: bool = True):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> "RedisProcess":
        binary = ensure_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir.resolve()),
             "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal goes to us; we stop Redis last
        )
        client = redis.Redis(port=self.port)
        deadline = time.time() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
