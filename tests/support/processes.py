"""Finding the processes a test's private Ray started."""

from __future__ import annotations

import os

import psutil


def processes_of(tmp_dir: str) -> list[psutil.Process]:
    """Our Ray processes: their command line names our temp dir, or they inherited our RAY_TMPDIR
    (workers rename themselves ``ray::...``, but keep their environment). Zombies are not counted:
    they have exited and hold nothing; only their parent's reaping is left (a SIGKILLed process's
    parent may be gone, and this container's init does not reap)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if tmp_dir in " ".join(proc.info["cmdline"] or []) or proc.environ().get("RAY_TMPDIR") == tmp_dir:
                found.append(proc)
        except psutil.Error:
            continue
    return found
