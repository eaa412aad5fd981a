"""Processes of a stack: who they are, how much memory they hold, and stopping leftovers."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from dataclasses import dataclass

import psutil

MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class ProcId:
    """A pid plus its start time, so a recycled pid is never mistaken for ours."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, proc: psutil.Process) -> "ProcId":
        return cls(proc.pid, proc.create_time())

    def process(self) -> psutil.Process | None:
        try:
            proc = psutil.Process(self.pid)
            return proc if abs(proc.create_time() - self.create_time) < 0.01 else None
        except psutil.Error:
            return None


def label(proc: psutil.Process) -> str:
    """A short name: ray::ServeReplica:..., raylet, gcs_server, redis-server, dashboard.py, haproxy ..."""
    try:
        cmd = proc.cmdline()
        name = proc.name()
    except psutil.Error:
        return "?"
    if cmd and cmd[0].startswith("ray::"):
        return cmd[0].split()[0]
    if not cmd:
        return name
    base = os.path.basename(cmd[0])
    if base == "ray" and len(cmd) > 1:  # the ray CLI, e.g. `ray start --head --block`
        return f"ray {cmd[1]}"
    if base.startswith("python"):
        joined = " ".join(cmd)
        for helper in ("forkserver", "resource_tracker"):
            if f"multiprocessing.{helper}" in joined:
                return f"multiprocessing {helper}"
        args = iter(cmd[1:])
        for arg in args:
            if arg in ("-m", "-u", "-B"):
                if arg == "-m":
                    return next(args, base)
                continue
            if arg == "-c":
                return f"{base} -c"
            if arg.startswith("-"):
                continue
            return os.path.basename(arg)
        return base
    return base


def tree(root_pid: int | None, extra_markers: tuple[str, ...] = ()) -> list[psutil.Process]:
    """``root_pid`` and all its descendants, plus any process whose command line names one of
    ``extra_markers`` (e.g. the Ray session dir, our temp dir), which catches re-parented ones."""
    procs: dict[int, psutil.Process] = {}
    if root_pid is not None:
        try:
            root = psutil.Process(root_pid)
            procs[root.pid] = root
            for child in root.children(recursive=True):
                procs[child.pid] = child
        except psutil.Error:
            pass
    markers = tuple(m for m in extra_markers if m)
    if markers:
        for proc in psutil.process_iter(["cmdline"]):
            cmd = " ".join(proc.info.get("cmdline") or [])
            if proc.pid != os.getpid() and any(m in cmd for m in markers):
                procs.setdefault(proc.pid, proc)
                try:
                    for child in proc.children(recursive=True):
                        procs.setdefault(child.pid, child)
                except psutil.Error:
                    pass
    return [p for p in procs.values() if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def memory(procs: list[psutil.Process]) -> dict:
    """RSS summed over processes (counts shared pages once per process), plus PSS (shared pages
    split between their users: the fair share of the stack) and USS (pages only that process has)."""
    total = {"rss": 0, "pss": 0, "uss": 0}
    pss_ok = True
    rows = []
    for proc in procs:
        try:
            rss = proc.memory_info().rss
            try:
                full = proc.memory_full_info()
                pss, uss = getattr(full, "pss", None), getattr(full, "uss", None)
            except (psutil.AccessDenied, AttributeError):
                pss = uss = None
            name = label(proc)
        except psutil.Error:
            continue
        total["rss"] += rss
        if pss is None:
            pss_ok = False
        else:
            total["pss"] += pss
            total["uss"] += uss
        rows.append({"pid": proc.pid, "name": name, "rss_mib": round(rss / MIB, 1),
                     "pss_mib": round(pss / MIB, 1) if pss is not None else None,
                     "uss_mib": round(uss / MIB, 1) if uss is not None else None})
    rows.sort(key=lambda r: -r["rss_mib"])
    return {"processes": len(rows), "rss_mib": round(total["rss"] / MIB, 1),
            "pss_mib": round(total["pss"] / MIB, 1) if pss_ok else None,
            "uss_mib": round(total["uss"] / MIB, 1) if pss_ok else None,
            "by_process": rows}


def listening_ports(proc: psutil.Process) -> list[tuple[str, int]]:
    try:
        conns = proc.net_connections(kind="tcp")
    except psutil.Error:
        return []
    return sorted({(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN})


def find_cmdline_value(procs: list[psutil.Process], pattern: str) -> str | None:
    rx = re.compile(pattern)
    for proc in procs:
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        m = rx.search(cmd)
        if m:
            return m.group(1)
    return None


def stop_leftovers(ids: list[ProcId], grace: float = 5.0) -> list[str]:
    """TERM, then KILL, whichever of these exact processes still run. Returns what it stopped."""
    left = [(i, p) for i in ids if (p := i.process()) is not None and _alive(p)]
    stopped = []
    for _, proc in left:
        try:
            stopped.append(f"{label(proc)}({proc.pid})")
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    deadline = time.time() + grace
    for _, proc in left:
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except psutil.TimeoutExpired:
            try:
                proc.kill()
            except psutil.Error:
                pass
        except psutil.Error:
            pass
    return stopped
