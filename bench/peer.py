"""The Celery peer (/work/shared/peer): set up, started and stopped with its own scripts."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil

from bench import procs

PEER_DIR = Path(os.environ.get("PEER_DIR", "/work/shared/peer"))
PEER_ROOT = Path(os.environ.get("PEER_ROOT", "/tmp/peer"))
PEER_PORT = int(os.environ.get("PEER_PORT", "8001"))


class PeerError(RuntimeError):
    pass


def bench_python() -> Path:
    return PEER_ROOT / "bench-venv" / "bin" / "python"


def bench_script() -> Path:
    return PEER_DIR / "bench.py"


def _recorded() -> list[tuple[str, int]]:
    try:
        lines = (PEER_ROOT / "pids").read_text().split("\n")
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out.append((parts[0], int(parts[1])))
    return out


def _group_alive(pgid: int) -> bool:
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                return True
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return False


class PeerStack:
    def __init__(self, max_chunks: int = 1000, log=print):
        self.max_chunks = max_chunks
        self.log = log
        self.started = False
        self.base_url = f"http://127.0.0.1:{PEER_PORT}"
        self.start_s: float | None = None

    def setup(self) -> None:
        self.log("[peer] setup.sh ...")
        r = subprocess.run([str(PEER_DIR / "setup.sh")], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise PeerError(f"setup.sh failed ({r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}")

    def start(self) -> None:
        live = [(n, p) for n, p in _recorded() if _group_alive(p)]
        if live:
            # start.sh would stop that stack first: it may be someone else's, so we refuse instead.
            raise PeerError(f"a peer stack is already running ({live}, see {PEER_ROOT / 'pids'}); "
                            f"stop it with {PEER_DIR / 'stop.sh'} if it is yours, then rerun")
        if procs.port_open(PEER_PORT):
            raise PeerError(f"port {PEER_PORT} is already in use")
        self.log(f"[peer] start.sh (PEER_MAX_CHUNKS={self.max_chunks}) ...")
        env = {**os.environ, "PEER_MAX_CHUNKS": str(self.max_chunks)}
        t0 = time.perf_counter()
        self.started = True  # a partial start is undone by start.sh itself, stop.sh is harmless after it
        r = subprocess.run([str(PEER_DIR / "start.sh")], capture_output=True, text=True, env=env, timeout=300,
                           start_new_session=True)
        if r.returncode != 0:
            raise PeerError(f"start.sh failed ({r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}")
        self.start_s = round(time.perf_counter() - t0, 1)
        self.log(f"[peer] up in {self.start_s} s at {self.base_url}")

    def stop(self) -> None:
        if not self.started:
            return
        self.log("[peer] stop.sh ...")
        subprocess.run([str(PEER_DIR / "stop.sh")], capture_output=True, text=True, timeout=120,
                       start_new_session=True)
        self.started = False

    def processes(self) -> list[psutil.Process]:
        groups = {p for _, p in _recorded()}
        out = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) in groups:
                    out.append(proc)
            except (ProcessLookupError, psutil.Error, OSError):
                continue
        return out

    def memory(self) -> dict:
        return procs.memory(self.processes())
