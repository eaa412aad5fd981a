"""A private redis-server process with AOF persistence (used by ``make run`` and the tests).

``appendfsync always`` by default (``REDIS_APPENDFSYNC``): Redis then fsyncs the AOF before it
replies, so a 202 means the job is on disk. With Redis' own default ``everysec`` the write reaches
the page cache before the reply (a crash of redis-server alone loses nothing) but a crash of the
host can drop the last second of acknowledged jobs; Redis 7.0 has no ``WAITAOF`` to wait for the
fsync per request. Cost measured here: one client's writes ~13,000/s → ~380/s; 16 clients share
fsyncs (~18,000/s → ~1,400/s). ``python -m bench --phases durability`` measures the whole stack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from cluster import child_process
from cluster.ports import free_port

APPENDFSYNC_CHOICES = ("always", "everysec", "no")
INSTALL_HINT = ("redis-server is not installed. Install it with your package manager, e.g. "
                "'sudo apt-get install redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS), "
                "or point REDIS_URL at an existing Redis.")


def appendfsync_setting(value: str | None = None) -> str:
    """``REDIS_APPENDFSYNC`` (default ``always``), checked: a typo must not start a Redis that
    silently falls back to another policy."""
    value = (value if value is not None else os.environ.get("REDIS_APPENDFSYNC", "always")).strip().lower()
    if value not in APPENDFSYNC_CHOICES:
        raise ValueError(f"REDIS_APPENDFSYNC must be one of {', '.join(APPENDFSYNC_CHOICES)}, got {value!r}")
    return value


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
    def __init__(self, data_dir: Path, port: int | None = None, appendonly: bool = True,
                 appendfsync: str | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync_setting(appendfsync)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> "RedisProcess":
        binary = ensure_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir.resolve()),
             "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", self.appendfsync,
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
        if self.process:
            child_process.stop(self.process, 10)
        self.process = None
